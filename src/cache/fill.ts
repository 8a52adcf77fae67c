/**
 * One response body on its way from the origin: chunked, written to LMDB (when it is
 * being stored) and read by any number of clients at their own pace — the leader's
 * client and collapsed followers alike (read-while-writer). Chunks stay in memory only
 * until they are committed and every reader has passed them, so memory stays bounded
 * by the number of chunks in flight, not by the size of the object.
 *
 * A fill written by another worker (`Fill.writtenElsewhere`) has its readers read chunk i
 * from LMDB once that worker reports it committed (read once for all of them, held only until
 * they have passed it), and ends (the last chunk arrives with the record's commit) or fails
 * as that worker reports.
 */
import type { Readable } from 'node:stream';
import type { BodyWriter, CommitResult } from './body-writer.ts';
import type { ChunkPool } from './chunk-pool.ts';
import type { FillReader } from './fill-reader.ts';
import { originBytesRead } from './scavenger.ts';
import type { CacheStore } from './store.ts';

export { FillReader } from './fill-reader.ts';

export type FillState = 'streaming' | 'done' | 'failed';

/**
 * How many chunks may wait for their LMDB commit before the origin is paused: room for the
 * writer to commit them in batches (body-writer.ts), 4 MiB at the default chunk size.
 */
const MAX_IN_FLIGHT = 16;
/** Without storing, how far the fastest reader may run ahead of the slowest (in chunks). */
const MAX_BUFFERED = 8;
/**
 * Origin reads smaller than this are copied into a shared tail buffer of TAIL_SIZE bytes rather
 * than kept one by one: a body of a few hundred thousand tiny reads keeps a few dozen pieces,
 * so nothing that walks or spreads the pieces grows with the number of reads.
 */
const SMALL_READ = 4096;
/** A tail starts small (a tiny body stays tiny) and doubles up to TAIL_SIZE. */
const FIRST_TAIL = 1024;
const TAIL_SIZE = 16 * 1024;

/** A fill's chunks held in pool buffers (chunk-pool.ts) and the socket writes still reading them. */
interface PooledChunks {
  /** Sealed chunks in a pool buffer, until the buffer goes back. */
  pooled: Set<number>;
  /** Socket writes of a pooled chunk's bytes not yet done, by chunk index. */
  sending: Map<number, number>;
  /** Pooled chunks dropped from memory whose socket writes are still running. */
  releasing: Map<number, Buffer>;
}

function newPooledChunks(): PooledChunks {
  return { pooled: new Set(), sending: new Map(), releasing: new Map() };
}

export class Fill {
  readonly chunkSize: number;
  state: FillState = 'streaming';
  error: Error | undefined;
  /**
   * Failed because the worker writing it (`writtenElsewhere`) exited: says nothing about the
   * origin, so a reader that has sent its client nothing yet may ask again.
   */
  writerExited = false;
  /** Bytes received so far. */
  received = 0;
  readonly #store: CacheStore;
  #writer: BodyWriter | undefined;
  /** Sealed chunks still held in memory, by index. */
  readonly #memory = new Map<number, Buffer>();
  /** Index up to which sealed chunks are committed to LMDB (exclusive). */
  #committed = 0;
  #sealed = 0;
  #partial: Buffer[] = [];
  #partialLength = 0;
  /** Where small reads are gathered; its filled part [0, #tailLength) is the last piece. */
  #tail: Buffer | undefined;
  #tailLength = 0;
  readonly #readers = new Set<FillReader>();
  readonly #waiting = new Set<() => void>();
  #source: Readable | undefined;
  /** Kept whole for the memory tier when the object turns out small. */
  readonly #keepWhole: boolean;
  /** The body id of a fill written by another worker. */
  #elsewhere: string | undefined;
  /** Made when a reader in another worker asks (most fills never have one). */
  #commitListeners: Set<(committed: number) => void> | undefined;
  readonly #pool: ChunkPool;
  /** Pool-buffer bookkeeping, made with the first pooled chunk (small bodies never have one). */
  #reuse: PooledChunks | undefined;
  /** Chunks handed to the writer whose write has not settled: LMDB may still read their bytes. */
  readonly #writing = new Set<number>();
  /** The body id chunks committed before storing stopped are read under (chunk()). */
  #stoppedBodyId: string | undefined;

  constructor(store: CacheStore, writer: BodyWriter | undefined, keepWhole: boolean) {
    this.#store = store;
    this.#writer = writer;
    this.chunkSize = store.options.chunkSize;
    this.#keepWhole = keepWhole;
    this.#pool = store.chunkPool;
  }

  /**
   * A fill another worker is writing under `bodyId`, of which chunks [0, committed) are in
   * LMDB; `committedElsewhere` and `endedElsewhere` report its progress.
   */
  static writtenElsewhere(store: CacheStore, bodyId: string, committed: number): Fill {
    const fill = new Fill(store, undefined, false);
    fill.#elsewhere = bodyId;
    fill.#sealed = committed;
    return fill;
  }

  /** A client is answered from the stored entry: the commit goes at once (BodyWriter.commitAtOnce). */
  commitAtOnce(): void {
    this.#writer?.commitAtOnce();
  }

  get storing(): boolean {
    return this.#writer !== undefined && !this.#writer.failed;
  }

  /** Chunks [0, committedCount) are in LMDB. */
  get committedCount(): number {
    return this.#committed;
  }

  /** Called with the committed chunk count each time it grows (for readers in other workers). */
  onCommitted(listener: (committed: number) => void): void {
    this.#commitListeners ??= new Set();
    this.#commitListeners.add(listener);
  }

  /**
   * After `finish`: the number of chunks holding the whole body in LMDB, or undefined when
   * not all of it is there (not stored, failed, or not finished).
   */
  get completeChunks(): number | undefined {
    const writer = this.#writer;
    return writer?.complete ? writer.chunks : undefined;
  }

  get sealedCount(): number {
    return this.#sealed;
  }

  /** Sealed chunks held in memory (the bound a slow reader must not lift). */
  get heldChunks(): number {
    return this.#memory.size;
  }

  get bodyId(): string | undefined {
    return this.#writer?.bodyId ?? this.#elsewhere;
  }

  /** Consumes the origin body; resolves when it ended or failed. */
  consume(source: Readable): Promise<void> {
    this.#source = source;
    return new Promise((resolve) => {
      source.on('data', (data: Buffer) => this.#push(data));
      source.on('end', () => {
        this.state = 'done';
        // A fill outlives its origin response until its commit: keeping the body stream would
        // keep the whole request (undici's handler, the client's context) alive that long, and
        // the collector would copy it from generation to generation.
        this.#source = undefined;
        this.#notify();
        resolve();
      });
      source.on('error', (error) => {
        this.fail(error);
        this.#source = undefined;
        resolve();
      });
      source.on('close', () => {
        if (this.state === 'streaming') this.fail(new Error('origin body closed before its end'));
        this.#source = undefined;
        resolve();
      });
    });
  }

  #push(data: Buffer): void {
    // Cancelled by a listener of this same read (nothing reads nor stores the body any more).
    if (this.state === 'failed') return;
    this.received += data.length;
    originBytesRead(data.length);
    if (data.length < SMALL_READ) this.#gather(data);
    else {
      this.#tail = undefined;
      this.#partial.push(data);
    }
    this.#partialLength += data.length;
    while (this.#partialLength >= this.chunkSize) this.#seal(this.chunkSize);
    this.#notify();
  }

  /**
   * Appends a small read to the tail buffer: the last piece of #partial is a view of the tail's
   * filled part, replaced by a longer view as it grows (bytes already viewed never change).
   */
  #gather(data: Buffer): void {
    let tail = this.#tail;
    if (tail === undefined || this.#tailLength + data.length > tail.length) {
      const size = tail === undefined ? FIRST_TAIL : Math.min(TAIL_SIZE, tail.length * 2);
      tail = Buffer.allocUnsafeSlow(Math.max(size, data.length));
      this.#tail = tail;
      this.#tailLength = 0;
      this.#partial.push(tail.subarray(0, 0));
    }
    data.copy(tail, this.#tailLength);
    this.#tailLength += data.length;
    this.#partial[this.#partial.length - 1] = tail.subarray(0, this.#tailLength);
  }

  /** Copies the first `length` bytes of the unsealed pieces into a pool buffer: chunk `#sealed`. */
  #seal(length: number): void {
    // The tail's bytes move into the sealed chunk (and the rest): gather anew after this.
    this.#tail = undefined;
    const pooled = length === this.#pool.size;
    const chunk = pooled ? this.#pool.take() : Buffer.allocUnsafeSlow(length);
    const pieces = this.#partial;
    let filled = 0;
    let next = 0;
    let rest: Buffer | undefined;
    while (filled < length) {
      const piece = pieces[next++]!;
      const taken = Math.min(piece.length, length - filled);
      piece.copy(chunk, filled, 0, taken);
      filled += taken;
      if (taken < piece.length) rest = piece.subarray(taken);
    }
    const after = pieces.slice(next);
    if (rest !== undefined) after.unshift(rest);
    this.#partial = after;
    this.#partialLength -= length;
    const index = this.#sealed++;
    this.#memory.set(index, chunk);
    if (pooled) {
      this.#reuse ??= newPooledChunks();
      this.#reuse.pooled.add(index);
    }
    if (this.storing) {
      const writer = this.#writer!;
      this.#writing.add(index);
      void writer.write(chunk).then((written) => {
        this.#writing.delete(index);
        // A chunk never written is not reported: readers in other workers would look for it.
        if (written && index + 1 > this.#committed) {
          this.#committed = index + 1;
          const listeners = this.#commitListeners;
          if (listeners !== undefined && !writer.failed)
            for (const listener of listeners) listener(this.#committed);
        }
        this.#prune();
        this.#pace();
      });
    }
    this.#pace();
  }

  /**
   * Pauses the origin while LMDB or the slowest reader is too far behind. Not storing, that is
   * counted in chunks the slowest reader has still to pass, not chunks held: a small body is
   * held whole for the memory tier (#prune), and counting those would pause the origin for
   * good once storing stopped (a chunked body past a maxObjectSize below memoryObjectSize, a
   * failing store), nothing left to resume it.
   */
  #pace(): void {
    const source = this.#source;
    if (!source || this.state !== 'streaming') return;
    const behind = this.storing
      ? (this.#writer?.inFlight ?? 0) > MAX_IN_FLIGHT
      : this.#sealed - this.#slowest() > MAX_BUFFERED;
    if (behind && !source.isPaused()) source.pause();
    else if (!behind && source.isPaused()) source.resume();
  }

  /** The chunk the slowest reader is at (every sealed chunk passed when nobody reads). */
  #slowest(): number {
    let slowest = this.#sealed;
    for (const reader of this.#readers) slowest = Math.min(slowest, reader.chunk);
    return slowest;
  }

  /**
   * Drops chunks every reader has passed, once they are in LMDB (or nothing is stored); and,
   * when storing, committed chunks more than MAX_BUFFERED behind the newest: a reader that far
   * behind (a client that reads slowly or not at all) reads them back from LMDB, so the node's
   * memory does not hold the object up to the reader's position (a paused client pinned a
   * whole 200 MiB miss until the send timeout cut it off).
   */
  #prune(): void {
    if (this.#keepWhole && this.received <= this.#store.memory.maxObjectSize) return;
    const slowest = this.#slowest();
    const storing = this.storing;
    const behind = this.#sealed - MAX_BUFFERED;
    for (const [index, chunk] of this.#memory) {
      const committed = index < this.#committed;
      if ((index < slowest && (committed || !storing)) || (storing && committed && index < behind)) {
        this.#memory.delete(index);
        this.#recycle(index, chunk);
      }
    }
  }

  /**
   * A chunk dropped from memory goes back to the pool once nothing reads it: not while LMDB
   * may still be copying it, and only after the socket writes of its bytes are done.
   */
  #recycle(index: number, chunk: Buffer): void {
    const reuse = this.#reuse;
    if (reuse === undefined || !reuse.pooled.has(index)) return;
    if (this.#writing.has(index)) {
      // Its write may still be running after storing stopped: left to the collector.
      reuse.pooled.delete(index);
      return;
    }
    if (reuse.sending.has(index)) {
      reuse.releasing.set(index, chunk);
      return;
    }
    reuse.pooled.delete(index);
    this.#pool.give(chunk);
  }

  /**
   * A reader is about to write bytes of chunk `index` to a socket: returns the callback to pass
   * to that write (undefined when the chunk's buffer is not reused, nothing to wait for).
   */
  sending(index: number): ((error?: Error | null) => void) | undefined {
    const reuse = this.#reuse;
    if (reuse === undefined || !reuse.pooled.has(index)) return undefined;
    reuse.sending.set(index, (reuse.sending.get(index) ?? 0) + 1);
    return () => this.#sent(reuse, index);
  }

  #sent(reuse: PooledChunks, index: number): void {
    const left = (reuse.sending.get(index) ?? 1) - 1;
    if (left > 0) {
      reuse.sending.set(index, left);
      return;
    }
    reuse.sending.delete(index);
    const chunk = reuse.releasing.get(index);
    if (chunk === undefined) return;
    reuse.releasing.delete(index);
    reuse.pooled.delete(index);
    this.#pool.give(chunk);
  }

  /**
   * A sealed chunk: from memory, else from LMDB (committed, dropped from memory: #prune). A
   * chunk committed within the event-loop turn whose read snapshot is in use is not in that
   * snapshot: it is read again in a new one.
   */
  chunk(index: number): Buffer | undefined {
    if (this.#elsewhere !== undefined) return this.#chunkElsewhere(this.#elsewhere, index);
    const held = this.#memory.get(index);
    // After storing stopped (too large), chunks committed before stay readable for the
    // store's grace period (BodyWriter.abort): a reader that fell behind reads them from there.
    const bodyId = this.#writer?.bodyId ?? this.#stoppedBodyId;
    if (held !== undefined || bodyId === undefined) return held;
    const read = this.#store.chunk(bodyId, index);
    if (read !== undefined || index >= this.#committed) return read;
    this.#store.resetReadTxn();
    return this.#store.chunk(bodyId, index);
  }

  /**
   * A chunk of another worker's fill, read from LMDB once for all readers here: it is held
   * until every reader has passed it (at most MAX_BUFFERED chunks; past that, readers read
   * their own copy). lmdb-js keeps one read snapshot per event-loop turn, and a commit
   * reported within the turn that snapshot was taken in is not in it: a chunk not found is
   * read again in a new snapshot.
   */
  #chunkElsewhere(bodyId: string, index: number): Buffer | undefined {
    const held = this.#memory.get(index);
    if (held !== undefined) return held;
    let chunk = this.#store.chunk(bodyId, index);
    if (chunk === undefined) {
      this.#store.resetReadTxn();
      chunk = this.#store.chunk(bodyId, index);
    }
    if (chunk !== undefined && this.#readers.size > 1 && this.#memory.size < MAX_BUFFERED)
      this.#memory.set(index, chunk);
    return chunk;
  }

  /** Another worker committed chunks [0, committed) of this fill. */
  committedElsewhere(committed: number): void {
    if (this.state !== 'streaming' || committed <= this.#sealed) return;
    this.#sealed = committed;
    this.#notify();
  }

  /**
   * Another worker's fill ended: with its whole body in LMDB in `chunks` chunks, or (undefined)
   * failed — its readers are then cut short; `exited`: because that worker exited.
   */
  endedElsewhere(chunks: number | undefined, exited = false): void {
    if (this.state !== 'streaming') return;
    if (chunks === undefined) {
      this.writerExited = exited;
      return this.fail(
        new Error(exited ? 'the worker writing the fill exited' : 'the fill in another worker failed'),
      );
    }
    if (chunks > this.#sealed) this.#sealed = chunks;
    this.state = 'done';
    this.#notify();
  }

  /** Bytes of the current, not yet sealed chunk from `offset` on. */
  partialFrom(offset: number): Buffer[] {
    const out: Buffer[] = [];
    let skip = offset;
    for (const piece of this.#partial) {
      if (skip >= piece.length) {
        skip -= piece.length;
        continue;
      }
      out.push(skip > 0 ? piece.subarray(skip) : piece);
      skip = 0;
    }
    return out;
  }

  get partialLength(): number {
    return this.#partialLength;
  }

  /** Whether a new reader can still read the body from its first byte. */
  get joinable(): boolean {
    return (
      this.state !== 'failed' &&
      (this.storing || this.#elsewhere !== undefined || this.#memory.has(0) || this.#sealed === 0)
    );
  }

  addReader(reader: FillReader): void {
    this.#readers.add(reader);
  }

  removeReader(reader: FillReader): void {
    this.#readers.delete(reader);
    this.#prune();
    this.#pace();
  }

  get readers(): number {
    return this.#readers.size;
  }

  onProgress(listener: () => void): void {
    this.#waiting.add(listener);
  }

  #notify(): void {
    if (this.#waiting.size === 0) return;
    const listeners = [...this.#waiting];
    this.#waiting.clear();
    for (const listener of listeners) listener();
  }

  /** A reader advanced: memory may be freed and the origin resumed. */
  advanced(): void {
    this.#prune();
    this.#pace();
  }

  /** Stops storing (too large, or storage failing); readers are still served. */
  stopStoring(): void {
    if (!this.#writer) return;
    if (this.#committed > 0) this.#stoppedBodyId = this.#writer.bodyId;
    this.#writer.abort();
    this.#writer = undefined;
    this.#prune();
    this.#pace();
  }

  fail(error: Error): void {
    if (this.state !== 'streaming') return;
    this.state = 'failed';
    this.error = error;
    this.#writer?.abort();
    this.#writer = undefined;
    this.#source?.destroy();
    this.#notify();
  }

  /** Abandons the origin body (nobody needs it any more). */
  cancel(): void {
    this.fail(new Error('fill cancelled: no reader and nothing to store'));
  }

  /** The whole body, when every chunk is still in memory (small objects). */
  wholeBody(): Buffer | undefined {
    const parts: Buffer[] = [];
    for (let i = 0; i < this.#sealed; i++) {
      const chunk = this.#memory.get(i);
      if (!chunk) return undefined;
      parts.push(chunk);
    }
    // No spread: an argument list as long as the pieces would overflow the stack.
    for (const piece of this.#partial) parts.push(piece);
    if (parts.length !== 1) return Buffer.concat(parts, this.received);
    const only = parts[0]!;
    // A view of the tail is copied: kept in the memory tier, it would hold the whole tail; a
    // pool buffer too, it must never be kept.
    return only.buffer === this.#tail?.buffer || this.#pool.owns(only) ? Buffer.from(only) : only;
  }

  /** After the body ended: write the last chunk and the record in one transaction. */
  finish(
    commit: (writer: BodyWriter, lastChunk: Buffer) => Promise<CommitResult>,
  ): Promise<CommitResult> | undefined {
    if (this.state !== 'done' || !this.storing) return undefined;
    const last =
      this.#partialLength > 0 ? Buffer.concat(this.#partial, this.#partialLength) : Buffer.alloc(0);
    return commit(this.#writer!, last);
  }
}
