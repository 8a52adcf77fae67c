/**
 * One client's view of a fill: writes the body to its response at the client's pace
 * (backpressure), from memory or LMDB as the fill says, and cuts the response short when the
 * body cannot be completed.
 */
import type { Fill } from './fill.ts';

/** Streams a fill to one client response, with backpressure. */
export class FillReader {
  chunk = 0;
  offset = 0;
  readonly #fill: Fill;
  readonly #out: NodeJS.WritableStream & {
    destroy(error?: Error): void;
    writableEnded: boolean;
    destroyed: boolean;
  };
  readonly #onDone: (ok: boolean) => void;
  #finished = false;
  bytes = 0;

  constructor(
    fill: Fill,
    out: NodeJS.WritableStream & { destroy(error?: Error): void; writableEnded: boolean; destroyed: boolean },
    onDone: (ok: boolean) => void,
  ) {
    this.#fill = fill;
    this.#out = out;
    this.#onDone = onDone;
    fill.addReader(this);
    out.once('close', () => this.#finish(false));
  }

  pump = (): void => {
    const fill = this.#fill;
    while (!this.#finished) {
      if (this.#out.destroyed) return this.#finish(false);
      if (this.chunk < fill.sealedCount) {
        const chunk = fill.chunk(this.chunk);
        if (chunk === undefined) return this.#abort();
        if (this.offset >= chunk.length) {
          this.offset -= chunk.length;
          this.chunk++;
          continue;
        }
        const piece = this.offset > 0 ? chunk.subarray(this.offset) : chunk;
        this.chunk++;
        this.offset = 0;
        fill.advanced();
        if (!this.#write(piece)) return this.#waitDrain();
        continue;
      }
      const pieces = fill.partialFrom(this.offset);
      if (pieces.length > 0) {
        let ok = true;
        for (const piece of pieces) ok = this.#write(piece, true) && ok;
        if (!ok) return this.#waitDrain();
        continue;
      }
      if (fill.state === 'done') {
        this.#finished = true;
        fill.removeReader(this);
        this.#out.end();
        this.#onDone(true);
        return;
      }
      if (fill.state === 'failed') return this.#abort();
      fill.onProgress(this.pump);
      return;
    }
  };

  #write(piece: Buffer, partial = false): boolean {
    if (partial) this.offset += piece.length;
    this.bytes += piece.length;
    return this.#out.write(piece);
  }

  #waitDrain(): void {
    this.#out.once('drain', this.pump);
  }

  /** The body cannot be completed: the client must see it cut short, never a clean end. */
  #abort(): void {
    if (this.#finished) return;
    this.#out.destroy(this.#fill.error ?? new Error('body unavailable'));
    this.#finish(false);
  }

  #finish(ok: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#fill.removeReader(this);
    this.#onDone(ok);
  }
}
