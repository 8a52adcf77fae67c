/**
 * One client's view of a fill: writes the body to its response at the client's pace
 * (backpressure: pieces of at most 64 KiB, the next only after 'drain'), from memory or LMDB
 * as the fill says, and cuts the response short when the body cannot be completed.
 */

/** What a reader needs of a fill (Fill, fill.ts); declared here so neither module imports the other's. */
export interface ReadableFill {
  readonly state: 'streaming' | 'done' | 'failed';
  readonly error: Error | undefined;
  readonly sealedCount: number;
  chunk(index: number): Buffer | undefined;
  /** Before writing bytes of sealed chunk `index`: the callback for that write, if it needs one. */
  sending(index: number): ((error?: Error | null) => void) | undefined;
  partialFrom(offset: number): Buffer[];
  addReader(reader: FillReader): void;
  removeReader(reader: FillReader): void;
  onProgress(listener: () => void): void;
  advanced(): void;
}

/** Largest piece written at once: what may wait in the node for one client (SEND_BUFFER in http/). */
const PIECE = 64 * 1024;

/** How the reader waits for the client to take what it wrote (default: the 'drain' event). */
export type WaitDrain = (resume: () => void) => void;

/**
 * The response head, sent only with the first body byte or the end: a fill that fails before
 * any byte came is answered by `failedEmpty` (an error status the client can read) instead of a
 * connection closed on a head never flushed; one that fails later is cut short by `cutShort`
 * (default: the response destroyed), which knows how the client's framing shows a cut.
 */
export interface Opening {
  head: () => void;
  failedEmpty: (error: Error) => void;
  cutShort?: (error: Error) => void;
}

/** Streams a fill to one client response, with backpressure. */
export class FillReader {
  chunk = 0;
  offset = 0;
  readonly #fill: ReadableFill;
  readonly #out: NodeJS.WritableStream & {
    destroy(error?: Error): void;
    writableEnded: boolean;
    destroyed: boolean;
  };
  readonly #onDone: (ok: boolean) => void;
  readonly #waitForClient: WaitDrain | undefined;
  /** Until the head is sent. */
  #opening: Opening | undefined;
  readonly #cutShort: (error: Error) => void;
  /** The sealed chunk being written (read once, written in pieces). */
  #current: Buffer | undefined;
  #finished = false;
  bytes = 0;

  constructor(
    fill: ReadableFill,
    out: NodeJS.WritableStream & { destroy(error?: Error): void; writableEnded: boolean; destroyed: boolean },
    onDone: (ok: boolean) => void,
    waitDrain?: WaitDrain,
    opening?: Opening,
  ) {
    this.#fill = fill;
    this.#out = out;
    this.#onDone = onDone;
    this.#waitForClient = waitDrain;
    this.#opening = opening;
    this.#cutShort = opening?.cutShort ?? ((error) => out.destroy(error));
    fill.addReader(this);
    out.once('close', () => this.#finish(false));
  }

  pump = (): void => {
    const fill = this.#fill;
    while (!this.#finished) {
      if (this.#out.destroyed) return this.#finish(false);
      if (this.chunk < fill.sealedCount) {
        const chunk = this.#current ?? fill.chunk(this.chunk);
        if (chunk === undefined) return this.#abort();
        if (this.offset >= chunk.length) {
          this.offset -= chunk.length;
          this.chunk++;
          this.#current = undefined;
          continue;
        }
        const piece = chunk.subarray(this.offset, this.offset + PIECE);
        // Taken before advancing: the chunk's buffer is reused only once this write is done.
        const sent = fill.sending(this.chunk);
        if (this.offset + piece.length >= chunk.length) {
          this.chunk++;
          this.offset = 0;
          this.#current = undefined;
          fill.advanced();
        } else {
          this.offset += piece.length;
          this.#current = chunk;
        }
        if (!this.#write(piece, false, sent)) return this.#waitDrain();
        continue;
      }
      const pieces = fill.partialFrom(this.offset);
      if (pieces.length > 0) {
        if (!this.#write(pieces[0]!.subarray(0, PIECE), true)) return this.#waitDrain();
        continue;
      }
      if (fill.state === 'done') {
        this.#finished = true;
        fill.removeReader(this);
        this.#open();
        this.#out.end();
        this.#onDone(true);
        return;
      }
      if (fill.state === 'failed') return this.#abort();
      fill.onProgress(this.pump);
      return;
    }
  };

  #write(piece: Buffer, partial = false, sent?: (error?: Error | null) => void): boolean {
    if (partial) this.offset += piece.length;
    this.#open();
    this.bytes += piece.length;
    return sent === undefined ? this.#out.write(piece) : this.#out.write(piece, sent);
  }

  #waitDrain(): void {
    if (this.#waitForClient) this.#waitForClient(this.pump);
    else this.#out.once('drain', this.pump);
  }

  #open(): void {
    const opening = this.#opening;
    if (opening === undefined) return;
    this.#opening = undefined;
    opening.head();
  }

  /**
   * The body cannot be completed: the client must see it cut short, never a clean end; or,
   * when nothing was sent yet, the opening's answer for it.
   */
  #abort(): void {
    if (this.#finished) return;
    const error = this.#fill.error ?? new Error('body unavailable');
    const opening = this.#opening;
    this.#opening = undefined;
    this.#finish(false);
    if (opening !== undefined) opening.failedEmpty(error);
    else this.#cutShort(error);
  }

  #finish(ok: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#fill.removeReader(this);
    this.#onDone(ok);
  }
}
