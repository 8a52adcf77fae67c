/**
 * The background revalidation story (RFC 5861 §3): the client was already answered stale;
 * one revalidation per key runs the miss path's steps without a client — collapse (lead, or
 * leave it to the worker that does) → fetch → triage → (refresh | insert | drop) — and is
 * logged and counted like any insert. A 304 that selects no stored response is followed by one
 * unconditional request (triage's `refetch`).
 */
import { EdgeError } from '../errors.ts';
import { LOGGED } from './completion.ts';
import { notStorable, type RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { discard, insertShared, type Leadership, originFailing } from './fill-driver.ts';
import type { Found } from './outcomes.ts';
import { fetchStep } from './phases/fetch.ts';
import { logRevalidation } from './phases/log.ts';
import { refresh } from './phases/refresh.ts';
import { triage } from './phases/triage.ts';

/** Starts the revalidation unless one runs for the key; returns its work, if started. */
export function revalidateInBackground(
  edge: Edge,
  ctx: RequestContext,
  stored: Found,
): Promise<void> | undefined {
  const storage = ctx.storage;
  if (edge.revalidating.has(storage) || edge.collapse.pending(storage)) return undefined;
  edge.revalidating.add(storage);
  const lead: Leadership = {
    settle: edge.collapse.lead(storage),
    leading: edge.collapse.pending(storage)?.outcome,
    collapsible: true,
  };
  const background: RequestContext = {
    ...ctx,
    cacheStatus: {},
    lookup: 'revalidated',
    insert: undefined,
    latch: LOGGED,
    start: performance.now(),
  };
  return revalidate(edge, background, stored, lead)
    .catch((error: unknown) => {
      lead.settle({ kind: 'failed', error: error instanceof EdgeError ? error : undefined });
      background.lookup = 'error';
      if (error instanceof EdgeError) background.error = error;
      // Logged once: in the revalidation's access-log line when there is one, else here.
      if (edge.access === undefined || !(error instanceof EdgeError))
        edge.log.warn({ err: (error as Error).message, url: ctx.key }, 'background revalidation failed');
    })
    .finally(() => {
      edge.collapse.release(storage, lead.leading);
      edge.revalidating.delete(storage);
      logRevalidation(edge, background);
    });
}

/**
 * Why a response cannot be stored that it says of itself, whoever asked (cache/policy/storable.ts,
 * plan.ts). Not an error status: a 403, a 429 or a 401 often answers who the client is (a block
 * by address, a rate limit), not what the resource has become.
 */
const OUTDATING: ReadonlySet<string> = new Set([
  'no-store',
  'vary-star',
  'vary-client',
  'must-understand',
  'no-freshness',
  'too-large',
]);

/** Reasons a personalised answer gives when the request carried credentials: about that user. */
const PERSONAL: ReadonlySet<string> = new Set(['private', 'set-cookie']);

/**
 * Whether a revalidation's unstorable answer shows the stored response outdated for everyone. A
 * `private` or `Set-Cookie` answer does when the request carried no Cookie nor Authorization
 * (nothing in it was personal); with them, it may be that user's own page.
 */
function outdates(ctx: RequestContext, status: number, reason: string): boolean {
  if (status >= 500) return false;
  if (OUTDATING.has(reason)) return true;
  const headers = ctx.req.headers;
  return PERSONAL.has(reason) && headers.cookie === undefined && headers.authorization === undefined;
}

async function revalidate(edge: Edge, ctx: RequestContext, stored: Found, lead: Leadership): Promise<void> {
  const generation = edge.store.purgeGeneration(ctx.storage);
  const claim = edge.collapse.claim(ctx.storage, false);
  if (claim !== undefined && (await claim).kind !== 'lead') {
    ctx.lookup = 'pass'; // another worker revalidates this key
    return;
  }
  let fetched = await fetchStep(edge, ctx, {
    fill: true,
    method: 'GET',
    validate: stored.record,
    background: true,
  });
  if (fetched.kind === 'failed') throw fetched.error;
  let step = triage(edge, ctx, stored, fetched, undefined, true);
  if (step.kind === 'refetch') {
    // A 304 that selects no stored response confirms nothing: the full response, once.
    discard(fetched.response.body);
    fetched = await fetchStep(edge, ctx, { fill: true, method: 'GET', background: true });
    if (fetched.kind === 'failed') throw fetched.error;
    step = triage(edge, ctx, undefined, fetched, undefined, true);
  }
  const { response } = fetched;
  if (step.kind === 'insert') {
    ctx.insert = await insertShared(edge, ctx.storage, ctx.key, step.plan, response, generation, lead);
    return;
  }
  discard(response.body);
  if (step.kind === 'refresh') {
    ctx.insert = (await refresh(edge, ctx, stored, fetched, generation)).insert;
    lead.settle({ kind: 'look-again' }); // followers find the refreshed entry
    return;
  }
  if (step.kind === 'stale-on-error') {
    ctx.lookup = 'error';
    lead.settle({ kind: 'failed', error: originFailing(response.status) });
    return;
  }
  if (step.kind === 'relay') {
    ctx.insert = notStorable(step.reason);
    // The origin answered with a newer response that cannot be stored for what it says itself
    // (private, no-store, Set-Cookie, a 403 ...): the stale one is outdated. Left in place, it
    // was served for the rest of its stale-while-revalidate window, each answer sending another
    // revalidation the node threw away; now the next request goes to the origin. Not for a
    // reason the request gave (a client's no-store or Authorization, a reflected header): no
    // client removes what others are served; nor for a server error.
    if (outdates(ctx, response.status, step.reason))
      await edge.store.removeVariantIfHolds(stored.id, stored.record.bodyId).catch(() => false);
  }
  lead.settle({ kind: 'look-again' });
}
