/**
 * Hot complete bodies kept in memory in front of LMDB, per worker, bounded in bytes.
 * Keyed by body id: a body never changes once written (a new fill gets a new id), so
 * this tier needs no invalidation to stay correct — only the LMDB record decides
 * what is served, and a purged body simply ages out.
 *
 * Eviction takes the least recently used first, with lazy promotion: a read moves a body to the
 * newest end of the Map only when it has drifted into the older half. Moving it on every read
 * (delete, then set) left a deleted copy of the key in its hash chain at each read, walked by
 * every later read until V8 rebuilt the table: a hot body's read cost 0.8 µs among 500 bodies
 * and 59 µs among 20,000 (bench/memory-tier.ts).
 */

interface Held {
  body: Buffer;
  /** The tier's sequence number when the body was set or last moved to the newest end. */
  seq: number;
}

export class MemoryTier {
  readonly #maxBytes: number;
  readonly #maxObject: number;
  /** Map order is the eviction order: the oldest first. */
  readonly #bodies = new Map<string, Held>();
  #bytes = 0;
  /** Counts sets and moves: a body set or moved n steps ago has at most n bodies newer than it. */
  #seq = 0;

  constructor(maxBytes: number, maxObject: number) {
    this.#maxBytes = maxBytes;
    this.#maxObject = Math.min(maxObject, maxBytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Bodies held. */
  get bodies(): number {
    return this.#bodies.size;
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

  /** The body, marked recently used (moved to the newest end unless already in the newer half). */
  get(bodyId: string): Buffer | undefined {
    const held = this.#bodies.get(bodyId);
    if (held === undefined) return undefined;
    if (this.#seq - held.seq >= (this.#bodies.size + 1) >> 1) {
      this.#bodies.delete(bodyId);
      held.seq = ++this.#seq;
      this.#bodies.set(bodyId, held);
    }
    return held.body;
  }

  set(bodyId: string, body: Buffer): void {
    if (!this.accepts(body.length) || this.#bodies.has(bodyId)) return;
    this.#bodies.set(bodyId, { body, seq: ++this.#seq });
    this.#bytes += body.length;
    for (const [id, old] of this.#bodies) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#bodies.delete(id);
      this.#bytes -= old.body.length;
    }
  }

  delete(bodyId: string): void {
    const held = this.#bodies.get(bodyId);
    if (held === undefined) return;
    this.#bodies.delete(bodyId);
    this.#bytes -= held.body.length;
  }
}
