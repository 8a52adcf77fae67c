/**
 * A map whose entries expire, bounded in size: markers that only save work (hit-for-pass
 * markers, counts of failed leaderships) must not grow with the number of keys ever seen.
 * Expired entries are swept when the map reaches `sweepAt` entries, and again each time it
 * has doubled since (so a map full of live entries is not walked on every insert); past `max`
 * entries, the oldest written are dropped (forgetting a marker costs a little work, never
 * correctness). Used by the collapse table and the cluster's lock broker.
 */
export class ExpiryMap<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  readonly #sweepAt: number;
  readonly #max: number;
  #nextSweep: number;

  constructor(sweepAt: number, max: number) {
    this.#sweepAt = sweepAt;
    this.#max = max;
    this.#nextSweep = sweepAt;
  }

  /** The value of `key` while it has not expired at `now`; an expired entry is removed. */
  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > now) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  /** Sets `key` until `until` (ms); it becomes the newest entry. */
  set(key: string, value: V, until: number, now: number): void {
    const entries = this.#entries;
    entries.delete(key);
    if (entries.size >= this.#nextSweep) {
      for (const [k, entry] of entries) if (entry.until <= now) entries.delete(k);
      this.#nextSweep = Math.max(this.#sweepAt, entries.size * 2);
    }
    for (const k of entries.keys()) {
      if (entries.size < this.#max) break;
      entries.delete(k);
    }
    entries.set(key, { value, until });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Entries held, expired or not. */
  get size(): number {
    return this.#entries.size;
  }
}
