/**
 * Hot complete bodies kept in memory in front of LMDB, per worker, bounded in bytes.
 * Keyed by body id: a body never changes once written (a new fill gets a new id), so
 * this tier needs no invalidation to stay correct — only the LMDB record decides
 * what is served, and a purged body simply ages out.
 */
export class MemoryTier {
  readonly #maxBytes: number;
  readonly #maxObject: number;
  readonly #bodies = new Map<string, Buffer>();
  #bytes = 0;

  constructor(maxBytes: number, maxObject: number) {
    this.#maxBytes = maxBytes;
    this.#maxObject = Math.min(maxObject, maxBytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get maxObjectSize(): number {
    return this.#maxObject;
  }

  accepts(size: number): boolean {
    return size <= this.#maxObject;
  }

  has(bodyId: string): boolean {
    return this.#bodies.has(bodyId);
  }

  /** The body, marked most recently used (Map order is the LRU order). */
  get(bodyId: string): Buffer | undefined {
    const body = this.#bodies.get(bodyId);
    if (body !== undefined) {
      this.#bodies.delete(bodyId);
      this.#bodies.set(bodyId, body);
    }
    return body;
  }

  set(bodyId: string, body: Buffer): void {
    if (!this.accepts(body.length) || this.#bodies.has(bodyId)) return;
    this.#bodies.set(bodyId, body);
    this.#bytes += body.length;
    for (const [id, old] of this.#bodies) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#bodies.delete(id);
      this.#bytes -= old.length;
    }
  }

  delete(bodyId: string): void {
    const body = this.#bodies.get(bodyId);
    if (body === undefined) return;
    this.#bodies.delete(bodyId);
    this.#bytes -= body.length;
  }
}
