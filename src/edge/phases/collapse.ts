/**
 * collapse: runs after the gate for a request forwarded to be stored. Decides who asks the
 * origin (Pingora's cache lock; Varnish's busy objects). A request that may collapse and finds
 * a fetch of its key running waits for it as a follower; otherwise it leads (in one process at
 * once; with workers, once the node-wide lock is granted). Returns:
 * - `lead`: fetch; the leadership is settled by the steps after (a no-op when not collapsible);
 * - `join`: read the leader's fill (fresh for this request, of its Vary variant);
 * - `again`: look the key up again (the store has the answer, or a new leader is elected);
 * - `pass`: fetch on its own, unstored (uncacheable, timeout, another variant);
 * - `fail`: leaders in a row failed: answer stale or the error, never ask the origin again;
 * - `gone`: the client left while waiting.
 */
import type { LeaderOutcome } from '../../cache/collapse.ts';
import { decideReuse } from '../../cache/policy/reuse.ts';
import { secondaryKey } from '../../cache/policy/vary.ts';
import type { EdgeError } from '../../errors.ts';
import { otherCoding } from '../compression.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { type Leadership, originFailing } from '../fill-driver.ts';
import { WHOLE_MAX } from '../follower.ts';
import { clientDirectives } from '../rule-effects.ts';

/** Attempts at the collapse lock before a request fetches on its own. */
export const MAX_ATTEMPTS = 3;
/** Leaders of one key that may fail in a row before its waiters are answered the error. */
const MAX_ELECTIONS = 3;

type Shared = Extract<LeaderOutcome, { kind: 'shared' }>;

export type Collapse =
  | { kind: 'lead'; lead: Leadership }
  | { kind: 'join'; outcome: Shared }
  | { kind: 'again' }
  | { kind: 'pass'; detail?: string }
  | { kind: 'fail'; error: EdgeError }
  | { kind: 'gone' }
  /** The origin-bound rate limit refused the request (already answered). */
  | { kind: 'refused' };

const NO_LEAD: Collapse = {
  kind: 'lead',
  lead: { settle: () => {}, leading: undefined, collapsible: false },
};
const AGAIN: Collapse = { kind: 'again' };
const REFUSED: Collapse = { kind: 'refused' };
const GONE: Collapse = { kind: 'gone' };
const PASS: Collapse = { kind: 'pass' };
const PASS_TIMEOUT: Collapse = { kind: 'pass', detail: 'collapse-timeout' };

/**
 * Decides at once (a value) unless there is something to wait for: a leader to follow, or
 * (workers > 1) the node-wide lock. A miss or pass in one process never waits here, and pays
 * for no async frame of its own.
 */
export function collapse(
  edge: Edge,
  ctx: RequestContext,
  collapsible: boolean,
  attempt: number,
  admit: () => boolean,
): Collapse | Promise<Collapse> {
  // A follower makes no origin request: only a request about to reach the origin is admitted.
  if (!collapsible) return admit() ? NO_LEAD : REFUSED;
  const pending = edge.collapse.pending(ctx.storage);
  if (pending !== undefined) return follow(edge, ctx, pending, attempt, admit);
  if (!admit()) return REFUSED;
  const settle = edge.collapse.lead(ctx.storage);
  const leading = edge.collapse.pending(ctx.storage)?.outcome;
  // Workers > 1: another worker may already lead this key (undefined in one process).
  const claim = edge.collapse.claim(ctx.storage, true);
  if (claim === undefined) return { kind: 'lead', lead: { settle, leading, collapsible: true } };
  return claimed(edge, ctx, attempt, claim, settle, leading);
}

/** Workers > 1: what the node-wide lock answered this request's claim. */
async function claimed(
  edge: Edge,
  ctx: RequestContext,
  attempt: number,
  claim: NonNullable<ReturnType<Edge['collapse']['claim']>>,
  settle: Leadership['settle'],
  leading: Leadership['leading'],
): Promise<Collapse> {
  const verdict = await claim;
  if (verdict !== undefined && verdict.kind !== 'lead') {
    if (ctx.res.destroyed) return GONE;
    // Another worker's leader was refused (its client's answer): fetch on your own, stored.
    if (verdict.kind === 'refused') return NO_LEAD;
    if (verdict.kind === 'look-again' && attempt < MAX_ATTEMPTS) return AGAIN;
    return verdict.kind === 'timeout' ? PASS_TIMEOUT : PASS;
  }
  if (verdict !== undefined && attempt === 1 && storedMeanwhile(edge, ctx)) {
    // Nothing was fetched: the local followers look again too, and the node-wide lock goes.
    settle({ kind: 'look-again' });
    edge.collapse.release(ctx.storage, leading);
    return AGAIN;
  }
  return { kind: 'lead', lead: { settle, leading, collapsible: true } };
}

/**
 * Workers > 1: another worker's fill may have been committed between this request's lookup
 * (a miss) and the node-wide lock granted to it — the other worker releases the lock only once
 * its entry is committed, but the lookup came before. One more read (a new snapshot) before
 * asking the origin keeps that to one origin request per key for the node.
 */
function storedMeanwhile(edge: Edge, ctx: RequestContext): boolean {
  const fwd = ctx.cacheStatus.fwd;
  if (fwd !== 'miss' && fwd !== 'vary-miss') return false;
  edge.store.resetReadTxn();
  return edge.store.lookup(ctx.storage, ctx.req.headers).kind === 'found';
}

/**
 * A follower: waits for the leader of its key and reads the leader's fill when it may reuse
 * that response as it is (Pingora's lock: done → read; give up → fetch on your own).
 * Followers get the header set a stored copy has, never the leader's own (its Set-Cookie
 * stays its own).
 */
async function follow(
  edge: Edge,
  ctx: RequestContext,
  pending: NonNullable<ReturnType<Edge['collapse']['pending']>>,
  attempt: number,
  admit: () => boolean,
): Promise<Collapse> {
  const res = ctx.res;
  const outcome = await edge.collapse.follow(pending, edge.collapseTimeoutMs, (leave) => {
    if (res.destroyed) return void leave();
    res.once('close', leave);
    return () => res.removeListener('close', leave);
  });
  if (ctx.res.destroyed) return GONE;
  if (outcome.kind === 'look-again' && attempt < MAX_ATTEMPTS) return AGAIN;
  if (outcome.kind === 'refused') {
    // The leader's client was refused (its own answer, not the key's): each follower fetches on
    // its own, as a request of a hit-for-pass key does, and a storable answer is stored. Passed
    // unstored, a refused client keeping a request in flight kept the key from being stored, and
    // sent every other client's request for it to the origin.
    return admit() ? NO_LEAD : REFUSED;
  }
  if (outcome.kind === 'failed') {
    // Elect a new leader, unless leaders in a row failed for this key: then a failing origin
    // is not asked once more per waiting client.
    if ((outcome.elections ?? 1) < MAX_ELECTIONS && attempt < MAX_ATTEMPTS) return AGAIN;
    return { kind: 'fail', error: outcome.error ?? originFailing(502) };
  }
  if (outcome.kind === 'shared' && outcome.fill.joinable && sameVariant(ctx, outcome)) {
    // The leader's body has all arrived and is being committed: a request sent after the first
    // response ended sees what it stored (a no-cache entry is then revalidated, conditionally).
    // A body scanned for reflected request values is read by its own client alone: others get
    // what its commit stored, if it was stored.
    const reuse =
      outcome.fill.state === 'done' || outcome.scanned === true
        ? 'after-commit'
        : followerReuse(edge, ctx, outcome);
    if (reuse === 'join') {
      ctx.lookup = 'collapsed';
      edge.metrics.collapsed.inc();
      ctx.cacheStatus.collapsed = true;
      return { kind: 'join', outcome };
    }
    if (reuse === 'after-commit') {
      // A conditional or range to answer from a fresh response: once it is stored.
      await committed(edge, ctx, outcome);
      if (ctx.res.destroyed) return GONE;
      if (attempt < MAX_ATTEMPTS) return AGAIN;
    }
  }
  if (outcome.kind === 'shared' && waitsForCommit(edge, ctx, outcome)) {
    await committed(edge, ctx, outcome);
    if (ctx.res.destroyed) return GONE;
    if (attempt < MAX_ATTEMPTS) return AGAIN;
  }
  // uncacheable, not reusable as it is, timeout, another variant: fetch on our own, never
  // overwriting the leader's fill
  return outcome.kind === 'timeout' ? PASS_TIMEOUT : PASS;
}

/**
 * Until the leader's fill is committed or abandoned, or this request's client left; its commit is
 * not kept waiting for others meanwhile. A client that left holds the gathering open no longer: a
 * large fill may run for minutes, every commit of the process made at once all that time.
 */
async function committed(edge: Edge, ctx: RequestContext, outcome: Shared): Promise<void> {
  const res = ctx.res;
  if (res.destroyed) return;
  const release = edge.store.holdCommits();
  let left!: () => void;
  const gone = new Promise<void>((resolve) => {
    left = resolve;
  });
  res.once('close', left);
  try {
    await Promise.race([outcome.done, gone]);
  } finally {
    res.removeListener('close', left);
    release();
  }
}

/** Whether a follower may read the fill now, after its commit, or not at all. */
function followerReuse(edge: Edge, ctx: RequestContext, outcome: Shared): 'join' | 'after-commit' | 'own' {
  const headers = ctx.req.headers;
  const directives = clientDirectives(ctx);
  // Zero lifetime, no-cache, stale (under max-stale or a grace too): not for another request.
  if (decideReuse(outcome.record, directives, edge.now()).kind !== 'fresh') return 'own';
  if (headers.range !== undefined) return 'after-commit';
  if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined)
    return 'after-commit';
  // A HEAD joins too: it is answered the head alone (readFill) at once, not once the whole body
  // (perhaps gigabytes from a slow origin) has arrived and been stored.
  return 'join';
}

/**
 * Whether a follower that cannot read the fill waits for its commit, then looks again:
 * - another Vary variant of the URL, small or already arrived: it then leads a fill of its own
 *   variant, which is stored (fetched on its own now it would not be: the leader holds the key);
 *   a large body of another variant is not waited for;
 * - another coding of a compressible fill: made from the stored entry (no origin request).
 */
function waitsForCommit(edge: Edge, ctx: RequestContext, outcome: Shared): boolean {
  if (otherCoding(ctx, outcome) && followerReuse(edge, ctx, outcome) !== 'own') return true;
  return !sameVariant(ctx, outcome) && smallOrArrived(outcome);
}

/** A fill another request may wait for: its body all arrived, or known to be small. */
function smallOrArrived(outcome: Shared): boolean {
  return outcome.fill.state === 'done' || (outcome.whole !== undefined && outcome.whole.length <= WHOLE_MAX);
}

function sameVariant(ctx: RequestContext, outcome: Shared): boolean {
  return outcome.vary.length === 0 || secondaryKey(outcome.vary, ctx.req.headers) === outcome.secondaryKey;
}
