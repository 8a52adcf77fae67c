/**
 * The purge fence between tiers (docs/tiers.md). A child that has applied a purge names it
 * when it asks its parent for a key the purge may cover, by the purge's fleet identity (its
 * origin: the node or bus stream that first accepted it, and the sequence there):
 *
 *   Strata-Fence: <origin>=<sequence>, <origin>=<sequence>
 *
 * covered by the Strata-Tier signature. A parent that has not applied every named purge yet
 * bypasses its stored entry for that request. The child names only purges it applied within
 * `tiers.fenceWindow` (a parent that never receives a purge is bypassed for that long, no
 * longer), at most MAX_RECENT of them, and one sequence per origin (the highest: each path
 * delivers an origin's purges in order, so a parent that reached it has every earlier one).
 */
import { type FillPurge, purgeCovers } from '../cache/collapse.ts';
import { META } from '../cache/meta-keys.ts';
import type { CacheStore } from '../cache/store.ts';
import { ORIGIN_ID, type PurgeOrigin } from './command.ts';
import type { PurgeLog } from './purge-log.ts';
import { fillTargets, type KeyedTarget, type SortQuery } from './targets.ts';

export const FENCE_HEADER = 'strata-fence';

/** One claim of a fence: this purge origin's purges up to `sequence` are applied. */
export interface FenceClaim {
  origin: string;
  sequence: number;
}

/** Applied purges remembered for the fence, at most (the newest). */
export const MAX_RECENT = 1000;
/** Origins named in one fence header, at most (the most recently purged first). */
export const MAX_CLAIMS = 16;
/** Longest fence header value read. */
const MAX_LENGTH = 16 * 90;

/** The header value of a list of claims. */
export function formatFence(claims: readonly FenceClaim[]): string {
  return claims.map((claim) => `${claim.origin}=${claim.sequence}`).join(', ');
}

/** The claims of a header value, or undefined when it is malformed or too long. */
export function parseFence(value: string | string[] | undefined): FenceClaim[] | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) return undefined;
  const claims: FenceClaim[] = [];
  for (const part of value.split(',')) {
    const item = part.trim();
    const at = item.lastIndexOf('=');
    const origin = item.slice(0, at);
    const sequence = Number(item.slice(at + 1));
    if (at <= 0 || !ORIGIN_ID.test(origin) || !Number.isSafeInteger(sequence) || sequence < 1)
      return undefined;
    claims.push({ origin, sequence });
  }
  return claims.length > MAX_CLAIMS ? undefined : claims;
}

/** Claims of both lists, the higher sequence per origin (`first`'s order, then `second`'s). */
export function mergeFence(first: readonly FenceClaim[], second: readonly FenceClaim[]): FenceClaim[] {
  const merged = new Map<string, number>();
  for (const claim of [...first, ...second])
    merged.set(claim.origin, Math.max(merged.get(claim.origin) ?? 0, claim.sequence));
  return [...merged].slice(0, MAX_CLAIMS).map(([origin, sequence]) => ({ origin, sequence }));
}

interface Recent {
  sequence: number;
  origin: PurgeOrigin;
  /** Clock time (ms) the purge was logged here. */
  at: number;
  targets: FillPurge;
  /**
   * How a key is matched: 'keys' — only its storage keys (indexed); 'check' — prefixes (and a
   * few keys), checked per request; 'every' — every key (a tag or `all` purge, or a list of URLs
   * too long to index: naming it for more keys than it covers only costs bypasses).
   */
  match: 'keys' | 'check' | 'every';
}

/** URL keys of one purge indexed at most; a purge with more covers every key for the fence. */
const MAX_INDEXED = 64;

export interface PurgeFenceOptions {
  store: CacheStore;
  log: PurgeLog;
  /** This node's id: the origin of the purges it accepted itself. */
  nodeId: string;
  sortQuery: SortQuery;
  /** The target as the site for a host keys it (its rules' cacheKey.query). */
  keyedTarget?: KeyedTarget;
  /** How long an applied purge is named (tiers.fenceWindow, ms). */
  windowMs: number;
  now: () => number;
}

export class PurgeFence {
  readonly #options: PurgeFenceOptions;
  /** Applied purges within the window, oldest first. */
  #recent: Recent[] = [];
  /** Storage key → the 'keys' purges of #recent naming it, oldest first. */
  readonly #byKey = new Map<string, Recent[]>();
  /** The 'check' and 'every' purges of #recent, oldest first. */
  #broad: Recent[] = [];
  /** Every log entry at or below this sequence has been read (applied ones are in #recent). */
  #readThrough: number;
  /** The store's purge counter when the log was last read (moves with every purge batch). */
  #seenPurgeSeq: unknown;

  constructor(options: PurgeFenceOptions) {
    this.#options = options;
    // Purges logged before this process started are read too: a restart keeps naming them.
    this.#readThrough = Math.max(0, options.log.sequence - MAX_RECENT);
    this.#seenPurgeSeq = undefined;
  }

  /**
   * The claims to send a parent with a request for `storage` (a storage key): the origins of
   * the applied purges of the window that may cover it (every tag purge may: the child does
   * not know the tags of what it fetches), the highest sequence each; past MAX_CLAIMS origins,
   * those purged most recently. Empty when there are none.
   */
  claimsFor(storage: string): FenceClaim[] {
    if (this.#options.windowMs <= 0) return [];
    this.#refresh();
    if (this.#recent.length === 0) return [];
    const found = new Map<string, Recent>();
    const note = (recent: Recent) => {
      const known = found.get(recent.origin.node);
      if (known === undefined || known.sequence < recent.sequence) found.set(recent.origin.node, recent);
    };
    for (const recent of this.#byKey.get(storage) ?? []) note(recent);
    for (const recent of this.#broad)
      if (recent.match === 'every' || purgeCovers(recent.targets, storage, undefined)) note(recent);
    const claims = [...found.values()];
    if (claims.length > MAX_CLAIMS) claims.sort((a, b) => b.at - a.at).length = MAX_CLAIMS;
    return claims.map((recent) => ({ origin: recent.origin.node, sequence: recent.origin.sequence }));
  }

  /** The claims of `claims` this node has not reached: purges it has not fully applied yet. */
  unmet(claims: readonly FenceClaim[]): FenceClaim[] {
    const store = this.#options.store;
    return claims.filter(
      (claim) =>
        ((store.readMeta(`${META.purgeOriginPrefix}${claim.origin}`) as number | undefined) ?? 0) <
        claim.sequence,
    );
  }

  /** Reads what the log gained since the last call, and forgets what left the window. */
  #refresh(): void {
    const { store, log, windowMs, now } = this.#options;
    const purgeSeq = store.readMeta(META.purgeSeq);
    if (purgeSeq !== this.#seenPurgeSeq) {
      this.#seenPurgeSeq = purgeSeq;
      this.#read(log);
    }
    const since = now() - windowMs;
    let expired = 0;
    while (
      expired < this.#recent.length &&
      (this.#recent[expired]!.at < since || this.#recent.length - expired > MAX_RECENT)
    )
      this.#forget(this.#recent[expired++]!);
    if (expired > 0) this.#recent = this.#recent.slice(expired);
  }

  #read(log: PurgeLog): void {
    const start = Math.max(this.#readThrough, log.sequence - MAX_RECENT);
    for (const { sequence, entry } of log.after(start, MAX_RECENT)) {
      // Applied in order: an unapplied one (still running) is read again next time.
      if (!entry.applied) break;
      this.#readThrough = sequence;
      if (entry.quarantined !== undefined) continue;
      const targets = fillTargets(entry.command, this.#options.sortQuery, this.#options.keyedTarget);
      const match =
        targets.all || targets.tags.length > 0 || targets.keys.length > MAX_INDEXED
          ? 'every'
          : targets.prefixes.length > 0
            ? 'check'
            : 'keys';
      // A merged purge (a bus backlog) stands for each of its origins.
      for (const origin of [
        entry.origin ?? { node: this.#options.nodeId, sequence },
        ...(entry.covers ?? []),
      ]) {
        // An id a header cannot carry is not named: it would make the whole fence unreadable.
        if (!ORIGIN_ID.test(origin.node)) continue;
        this.#index({ sequence, origin, at: entry.at, targets, match });
      }
    }
  }

  #index(recent: Recent): void {
    this.#recent.push(recent);
    if (recent.match !== 'keys') this.#broad.push(recent);
    else
      for (const key of recent.targets.keys) {
        const list = this.#byKey.get(key);
        if (list === undefined) this.#byKey.set(key, [recent]);
        else list.push(recent);
      }
  }

  /** Drops the oldest purge of #recent from the indexes (the caller drops it from #recent). */
  #forget(recent: Recent): void {
    if (recent.match !== 'keys') {
      if (this.#broad[0] === recent) this.#broad.shift();
      return;
    }
    for (const key of recent.targets.keys) {
      const list = this.#byKey.get(key);
      if (list?.[0] === recent) list.shift();
      if (list?.length === 0) this.#byKey.delete(key);
    }
  }
}
