/**
 * One purge, applied in bounded steps. Each step runs inside a write transaction and
 * touches at most `limit` keys, so a purge of 100,000 tagged entries is many short
 * transactions with hits served in between, never one long one. Cursors make every
 * step resume where the last one stopped:
 *  - urls: the primary keys, in order (every variant of each);
 *  - prefixes (and `all`, the empty prefix): a range scan of `entries` in key order,
 *    starting at the prefix and stopping at the first key that does not start with it;
 *    variant keys (`key U+001F hash`) are skipped, their primary key purges them;
 *  - tags: the values of the `tags` dupSort index under the tag.
 */
import { beyondStoredKeys, VARIANT_SEPARATOR } from '../cache/key.ts';
import type { CacheStore } from '../cache/store.ts';

/** Keys handled between two looks at the clock. */
const SLICE = 64;

type Phase =
  | { kind: 'keys'; keys: string[]; index: number }
  | { kind: 'prefix'; prefix: string; cursor: string | undefined }
  | { kind: 'tag'; tag: string; cursor: string | undefined };

export class PurgeWalk {
  /** Variants removed or marked stale so far. */
  purged = 0;
  /** Keys (URL keys, record keys under a prefix, tag index entries) visited so far. */
  visited = 0;
  readonly #store: CacheStore;
  readonly #soft: boolean;
  readonly #phases: Phase[];

  /** `keys`: storage keys of the URLs; `prefixes`: in key form ('' for everything). */
  constructor(store: CacheStore, soft: boolean, keys: string[], prefixes: string[], tags: string[]) {
    this.#store = store;
    this.#soft = soft;
    this.#phases = [];
    if (keys.length > 0) this.#phases.push({ kind: 'keys', keys, index: 0 });
    // A prefix longer than any stored key matches nothing, and LMDB throws seeking to it (inside
    // the purge's transaction: logged and published, then answered 500 and left unapplied).
    for (const prefix of prefixes)
      if (!beyondStoredKeys(prefix)) this.#phases.push({ kind: 'prefix', prefix, cursor: undefined });
    for (const tag of tags) this.#phases.push({ kind: 'tag', tag, cursor: undefined });
  }

  /**
   * What the walk will visit, counted before it starts (read-only counts, no record decoded):
   * URL keys, record keys under each prefix (variants included), index entries under each tag.
   * An estimate: fills committed meanwhile add to it.
   */
  estimate(): number {
    let total = 0;
    for (const phase of this.#phases) {
      if (phase.kind === 'keys') total += phase.keys.length;
      else if (phase.kind === 'prefix') total += this.#store.countKeys(phase.prefix);
      else total += this.#store.countTagged(phase.tag);
    }
    return total;
  }

  get done(): boolean {
    return this.#phases.length === 0;
  }

  /**
   * Inside a write transaction: visits at most `limit` keys, and stops early once `maxMs`
   * have passed (the event loop waits while a transaction callback runs).
   * Returns true when the purge is done.
   */
  stepInTxn(limit: number, maxMs = Number.POSITIVE_INFINITY): boolean {
    const deadline = performance.now() + maxMs;
    let budget = limit;
    while (budget > 0 && this.#phases.length > 0) {
      const phase = this.#phases[0]!;
      const slice = Math.min(budget, SLICE);
      const result =
        phase.kind === 'keys'
          ? this.#keys(phase, slice)
          : phase.kind === 'prefix'
            ? this.#prefix(phase, slice)
            : this.#tag(phase, slice);
      budget -= result.visited;
      if (result.finished) this.#phases.shift();
      if (performance.now() >= deadline) break;
    }
    return this.#phases.length === 0;
  }

  #purgeKey(storage: string): void {
    try {
      this.purged += this.#soft
        ? this.#store.invalidateKeyInTxn(storage)
        : this.#store.removeKeyInTxn(storage);
    } catch {
      // A record that does not decode (a damaged store): removed by key, soft purge or not.
      this.#store.dropInTxn(storage);
      this.purged++;
    }
  }

  #keys(phase: Extract<Phase, { kind: 'keys' }>, budget: number): { visited: number; finished: boolean } {
    const end = Math.min(phase.keys.length, phase.index + budget);
    for (let i = phase.index; i < end; i++) this.#purgeKey(phase.keys[i]!);
    const visited = end - phase.index;
    this.visited += visited;
    phase.index = end;
    return { visited, finished: end >= phase.keys.length };
  }

  #prefix(phase: Extract<Phase, { kind: 'prefix' }>, budget: number): { visited: number; finished: boolean } {
    const keys: string[] = [];
    let outside = false;
    const range =
      phase.cursor === undefined
        ? { start: phase.prefix, limit: budget }
        : { after: phase.cursor, limit: budget };
    for (const key of this.#store.keys(range)) {
      if (!key.startsWith(phase.prefix)) {
        outside = true;
        break;
      }
      keys.push(key);
    }
    for (const key of keys) if (!key.includes(VARIANT_SEPARATOR)) this.#purgeKey(key);
    this.visited += keys.length;
    if (keys.length > 0) phase.cursor = keys[keys.length - 1];
    return { visited: Math.max(1, keys.length), finished: outside || keys.length < budget };
  }

  #tag(phase: Extract<Phase, { kind: 'tag' }>, budget: number): { visited: number; finished: boolean } {
    const ids = [...this.#store.tagged(phase.tag, { after: phase.cursor, limit: budget })];
    for (const id of ids) {
      if (this.#soft) {
        if (this.#store.invalidateVariantInTxn(id)) this.purged++;
      } else if (this.#store.removeEvictedInTxn(id)) {
        this.purged++;
      } else {
        // An index entry whose variant is gone: drop it so the index stays exact.
        this.#store.untagInTxn(phase.tag, id);
      }
    }
    this.visited += ids.length;
    if (ids.length > 0) phase.cursor = ids[ids.length - 1];
    return { visited: Math.max(1, ids.length), finished: ids.length < budget };
  }
}
