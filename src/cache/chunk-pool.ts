/**
 * Chunk buffers reused from one sealed chunk to the next. A large body passes through a fill
 * one chunk at a time; allocating a fresh chunk for each one made the garbage collector the
 * largest cost of a large miss (every few MiB of new buffers starts a full mark of the heap).
 * A fill takes a buffer here when it seals a chunk and gives it back once nothing can read it
 * again: committed to LMDB (or never handed to it), passed by every reader, and every socket
 * write of its bytes done. A buffer that cannot be proven free is simply never given back.
 */
export class ChunkPool {
  readonly size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];
  /** Buffers this pool handed out (given back ones only are accepted). */
  readonly #mine = new WeakSet<Buffer>();

  /** `max`: how many free buffers are kept at most (the rest are left to the collector). */
  constructor(size: number, max: number) {
    this.size = size;
    this.#max = max;
  }

  /** Free buffers kept, in bytes. */
  get bytes(): number {
    return this.#free.length * this.size;
  }

  /** A buffer of `size` bytes whose contents are undefined (the caller fills all of it). */
  take(): Buffer {
    const buffer = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.#mine.add(buffer);
    return buffer;
  }

  /** Whether `buffer` came from `take` (and is not free). */
  owns(buffer: Buffer): boolean {
    return this.#mine.has(buffer);
  }

  /** Gives back a buffer from `take` that nothing refers to any more. */
  give(buffer: Buffer): void {
    if (!this.#mine.delete(buffer)) return;
    if (this.#free.length < this.#max) this.#free.push(buffer);
  }
}
