/**
 * Request collapsing: concurrent misses for one key make one origin request. The first
 * request leads; the others wait for the leader's response headers and then either read
 * its body as it arrives, or — when the response cannot be shared — fetch on their own.
 * The lock's states follow the well-known model: waiting, done (shared), uncacheable
 * (released, and a hit-for-pass marker stops the next waves from queueing), failed
 * (followers compete again: one becomes the new leader — a bounded number of times in a row,
 * then they are answered the error), look-again (the store has the answer), timeout (fetch on
 * their own). A follower takes a shared response only when it may reuse it as it is: fresh
 * for its request, of its Vary variant; otherwise it gives up and fetches on its own.
 */
import type { EdgeError } from '../errors.ts';
import { ExpiryMap } from './expiry-map.ts';
import type { Fill } from './fill.ts';
import type { StoredFreshness } from './policy/reuse.ts';

export type LeaderOutcome =
  /** The response is being stored: followers whose Vary fields match read `fill`. */
  | {
      kind: 'shared';
      fill: Fill;
      status: number;
      headers: string[];
      vary: string[];
      secondaryKey: string;
      /** Freshness of the response being stored: a follower joins only if it may reuse it. */
      record: StoredFreshness;
      /** The response's tags (a tag purge covers its fill); unknown for another worker's fill. */
      tags?: readonly string[];
      /**
       * A body of known length filled in this process: the stored header list (no framing
       * fields) and the length, so a follower of a small body can answer it whole, head and body
       * in one write, once it has all arrived (edge/follower.ts).
       */
      whole?: { headers: readonly string[]; length: number };
      /** Settles when the fill is committed or abandoned: then the store has the last word. */
      done: Promise<void>;
      /**
       * The body is scanned for reflected request values before it may be stored (cache
       * poisoning): followers never read it as it streams, only what the commit stored.
       */
      scanned?: boolean;
    }
  /** Not shareable: followers fetch on their own (unstored) and the key is marked hit-for-pass. */
  | { kind: 'uncacheable' }
  /**
   * The leader's client was refused (a 4xx or 508 about it, not the key): followers fetch on
   * their own and store what may be stored; no hit-for-pass marker, so one refused client does
   * not stop the key's collapsing for everyone.
   */
  | { kind: 'refused' }
  /**
   * The leader failed before a response could be shared: elect a new leader — unless
   * `elections` leaders in a row failed for this key; then followers answer `error` (or
   * stale) rather than each asking a failing origin in turn.
   */
  | { kind: 'failed'; error?: EdgeError; elections?: number }
  /** The stored entry was refreshed (304) or left as it was: followers look the key up again. */
  | { kind: 'look-again' }
  /** The node-wide lock was not granted in time: followers fetch on their own, unstored. */
  | { kind: 'timeout' };

/**
 * The node-wide verdict for a local leader (workers > 1: another worker may be fetching
 * the key). 'look-again': the other worker's fetch ended (stored, or failed) — look the key
 * up again; the others mirror the follower outcomes.
 */
export type NodeClaim =
  | { kind: 'lead' }
  | { kind: 'look-again' }
  | { kind: 'uncacheable' }
  | { kind: 'refused' }
  | { kind: 'timeout' };

/** What a purge covers, to find the running fills it must close to new readers. */
export interface FillPurge {
  all: boolean;
  /** Storage keys (URL purges). */
  keys: readonly string[];
  /** Storage key prefixes. */
  prefixes: readonly string[];
  tags: readonly string[];
}

/** Whether a purge covers a key whose response carries `tags` (undefined: not known yet). */
export function purgeCovers(purge: FillPurge, key: string, tags: readonly string[] | undefined): boolean {
  if (purge.all || purge.keys.includes(key)) return true;
  for (const prefix of purge.prefixes) if (key.startsWith(prefix)) return true;
  if (purge.tags.length === 0) return false;
  // A fill whose tags are not known yet may carry one of them.
  return tags === undefined || tags.some((tag) => purge.tags.includes(tag));
}

interface Pending {
  /** Identifies this leadership (release compares it); never awaited, so it holds no reactions. */
  outcome: Promise<LeaderOutcome>;
  resolve: (outcome: LeaderOutcome) => void;
  /** The leader's outcome once settled. */
  result: LeaderOutcome | undefined;
  /** Followers waiting now; each removes itself when it stops waiting. */
  listeners: Set<(outcome: LeaderOutcome) => void>;
  waiters: number;
  /** 1 + how many leaders in a row just failed for this key. */
  election: number;
  /** Whether `onHerd` was told of this leadership's followers (once per leadership). */
  herd: boolean;
  /** The leader has its origin's answer, its outcome still to come (`answered`). */
  answered: boolean;
}

/**
 * Followers waiting for one leader from which they are a herd: the table tells `onHerd`, once
 * per leadership (scavenger.ts collects the young objects of their connections while the origin
 * is still answering, not while they are answered).
 */
export const HERD_FOLLOWERS = 64;

/**
 * How a follower learns that its client left: `leave` is called at most once (at once when the
 * client is already gone); the function returned stops listening. A plain listener, not an
 * AbortSignal: a signal aborted on every response's close builds a DOMException each time.
 */
export type OnLeave = (leave: () => void) => (() => void) | undefined;

/** An OnLeave from an AbortSignal. */
export function leaveOnAbort(signal: AbortSignal): OnLeave {
  return (leave) => {
    if (signal.aborted) {
      leave();
      return undefined;
    }
    signal.addEventListener('abort', leave, { once: true });
    return () => signal.removeEventListener('abort', leave);
  };
}

const TIMEOUT = { kind: 'timeout' } as const;

/** How long failed leaderships of a key are remembered (their count bounds re-elections). */
const FAILURES_MS = 10_000;
/** Past this many remembered failures, expired ones are swept (and the oldest dropped). */
const FAILURES_MAX = 10_000;
/** Above this many hit-for-pass markers, expired ones are swept on insert … */
export const HIT_FOR_PASS_SWEEP = 10_000;
/** … and past this many, the oldest are dropped (a marker only saves a queue). */
export const HIT_FOR_PASS_MAX = 100_000;

export class CollapseTable {
  readonly #pending = new Map<string, Pending>();
  readonly #hitForPass = new ExpiryMap<true>(HIT_FOR_PASS_SWEEP, HIT_FOR_PASS_MAX);
  /** key → failed leaderships in a row (the count holds FAILURES_MS). */
  readonly #failures = new ExpiryMap<number>(FAILURES_MAX, FAILURES_MAX);
  readonly #hitForPassMs: number;
  readonly #now: () => number;
  /**
   * Told when HERD_FOLLOWERS followers wait for one leader, with whether they still wait (its
   * outcome not settled nor its origin's answer in, and some of them not gone); once per leadership.
   */
  onHerd: ((stillWaiting: () => boolean) => void) | undefined;

  constructor(hitForPassMs: number, now: () => number) {
    this.#hitForPassMs = hitForPassMs;
    this.#now = now;
  }

  /** The pending fetch for `key`, if one is running. */
  pending(key: string): Pending | undefined {
    return this.#pending.get(key);
  }

  /** Whether `key` recently answered uncacheable, so requests should not queue behind it. */
  isHitForPass(key: string): boolean {
    return this.#hitForPass.get(key, this.#now()) === true;
  }

  /** Hit-for-pass markers held (bounded: HIT_FOR_PASS_MAX). */
  get hitForPassMarkers(): number {
    return this.#hitForPass.size;
  }

  /**
   * Becomes the leader for `key`; call the returned function once with the outcome. A
   * shared outcome keeps the key pending (late arrivals still join the fill) until
   * `release(key)`, called when the fill is committed or abandoned.
   */
  lead(key: string): (outcome: LeaderOutcome) => void {
    let resolve!: (outcome: LeaderOutcome) => void;
    const outcome = new Promise<LeaderOutcome>((r) => {
      resolve = r;
    });
    const election = this.#failedInARow(key) + 1;
    const pending: Pending = {
      outcome,
      resolve,
      result: undefined,
      listeners: new Set(),
      waiters: 0,
      election,
      herd: false,
      answered: false,
    };
    this.#pending.set(key, pending);
    let settled = false;
    return (settledWith) => {
      if (settled) return;
      settled = true;
      let result = settledWith;
      if (result.kind !== 'shared' && this.#pending.get(key) === pending) this.#pending.delete(key);
      const now = this.#now();
      if (result.kind === 'uncacheable') this.#hitForPass.set(key, true, now + this.#hitForPassMs, now);
      else this.#hitForPass.delete(key);
      if (result.kind === 'failed') {
        result = { ...result, elections: election };
        this.#failures.set(key, election, now + FAILURES_MS, now);
      } else this.#failures.delete(key);
      pending.result = result;
      pending.resolve(result);
      for (const listener of pending.listeners) listener(result);
      pending.listeners.clear();
    };
  }

  /**
   * The leadership `outcome` of `key` has its origin's answer, its outcome still to come (a
   * refresh being committed): its followers no longer wait on the origin (onHerd).
   */
  answered(key: string, outcome: Promise<LeaderOutcome> | undefined): void {
    const pending = this.#pending.get(key);
    if (pending !== undefined && pending.outcome === outcome) pending.answered = true;
  }

  #failedInARow(key: string): number {
    return this.#failures.get(key, this.#now()) ?? 0;
  }

  /**
   * Waits for the leader's outcome, at most `timeoutMs`; 'timeout' then, or when `onLeave`
   * reports the client gone. The waiter is counted only while it waits, so departed clients
   * leave nothing behind.
   */
  follow(
    pending: Pending,
    timeoutMs: number,
    onLeave: OnLeave,
  ): Promise<LeaderOutcome | { kind: 'timeout' }> {
    if (pending.result !== undefined) return Promise.resolve(pending.result);
    return new Promise((resolve) => {
      pending.waiters++;
      if (pending.waiters >= HERD_FOLLOWERS && !pending.herd && this.onHerd !== undefined) {
        pending.herd = true;
        this.onHerd(() => pending.result === undefined && !pending.answered && pending.waiters > 0);
      }
      let finished = false;
      let stopListening: (() => void) | undefined;
      const done = (outcome: LeaderOutcome | { kind: 'timeout' }) => {
        if (finished) return;
        finished = true;
        pending.waiters--;
        pending.listeners.delete(done);
        clearTimeout(timer);
        stopListening?.();
        resolve(outcome);
      };
      const leave = () => done(TIMEOUT);
      const timer = setTimeout(leave, timeoutMs);
      pending.listeners.add(done);
      stopListening = onLeave(leave);
      if (finished) stopListening?.();
    });
  }

  /**
   * Asks for the node-wide lock after `lead(key)`: undefined when this process is the whole
   * node (nothing to wait for — the single-process path stays synchronous). An implementation
   * coordinating several processes resolves to 'lead', or settles the local followers itself
   * and resolves to what the local leader should do instead. `wait` false: answer at once
   * when another process holds the lock (background revalidation).
   */
  claim(_key: string, _wait: boolean): Promise<NodeClaim> | undefined {
    return undefined;
  }

  /**
   * A purge started: the fills it covers take no new reader — later requests for their keys
   * lead a fetch of their own (whose content the purge does not void). Followers already
   * waiting stay with their leader. Returns how many pending keys were closed.
   */
  purgeFills(purge: FillPurge): number {
    let closed = 0;
    for (const [key, pending] of this.#pending) {
      const result = pending.result;
      if (!purgeCovers(purge, key, result?.kind === 'shared' ? result.tags : undefined)) continue;
      this.#pending.delete(key);
      this.#hitForPass.delete(key);
      closed++;
    }
    return closed;
  }

  /** Ends a shared fill's pending state (after its commit). */
  release(key: string, outcome: Promise<LeaderOutcome> | undefined): void {
    const pending = this.#pending.get(key);
    if (pending !== undefined && (outcome === undefined || pending.outcome === outcome))
      this.#pending.delete(key);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Waiters across all pending keys (for metrics and leak checks). */
  get waiters(): number {
    let count = 0;
    for (const pending of this.#pending.values()) count += pending.waiters;
    return count;
  }
}
