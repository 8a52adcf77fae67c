/**
 * Chunk buffers reused from one chunk to the next. A large body passes through the node one
 * chunk at a time; allocating a fresh buffer for each made the garbage collector the largest
 * cost of a large miss or hit (every few MiB of new buffers starts a full mark of the heap).
 * A fill takes a buffer here when it seals a chunk, a hit when it reads one from LMDB, and
 * each gives it back once nothing can read it again: for a fill, committed to LMDB (or never
 * handed to it), passed by every reader and every socket write of its bytes done; for a hit,
 * its socket writes done (`ChunkLease`). A buffer that cannot be proven free is simply never
 * given back: the collector takes it as before.
 */
export class ChunkPool {
  readonly size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];
  /** Buffers handed out and not given back, by their memory (views of them are given back too). */
  readonly #out = new WeakMap<ArrayBufferLike, Buffer>();

  /** `max`: how many free buffers are kept at most (the rest are left to the collector). */
  constructor(size: number, max: number) {
    this.size = size;
    this.#max = max;
  }

  /** Free buffers kept, in bytes. */
  get bytes(): number {
    return this.#free.length * this.size;
  }

  /** A buffer of `size` bytes whose contents are undefined (the caller fills what it uses). */
  take(): Buffer {
    const buffer = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.#out.set(buffer.buffer, buffer);
    return buffer;
  }

  /** Whether `view` lies in a buffer handed out by `take` and not given back. */
  owns(view: Buffer): boolean {
    return this.#out.has(view.buffer);
  }

  /** Gives back the buffer `view` lies in, once nothing refers to any part of it. */
  give(view: Buffer): void {
    const buffer = this.#out.get(view.buffer);
    if (buffer === undefined) return;
    this.#out.delete(view.buffer);
    if (this.#free.length < this.#max) this.#free.push(buffer);
  }
}

/**
 * One pool buffer being written to a socket in pieces: it goes back to the pool once the
 * writer has passed it and every write of it is done (`sent` is each write's callback).
 */
export class ChunkLease {
  readonly #pool: ChunkPool;
  readonly #buffer: Buffer;
  #writes = 0;
  #passed = false;

  constructor(pool: ChunkPool, buffer: Buffer) {
    this.#pool = pool;
    this.#buffer = buffer;
  }

  /** Before each write of a piece of the buffer: the callback to pass to that write. */
  writing(): (error?: Error | null) => void {
    this.#writes++;
    return this.#sent;
  }

  readonly #sent = (): void => {
    if (--this.#writes === 0 && this.#passed) this.#pool.give(this.#buffer);
  };

  /** The writer wrote its last piece of the buffer (or stopped writing). */
  pass(): void {
    if (this.#passed) return;
    this.#passed = true;
    if (this.#writes === 0) this.#pool.give(this.#buffer);
  }
}
