/**
 * fail: runs when no origin answer can be delivered — the fetch failed, or leaders of the key
 * failed in a row. Decides between the stored response, served stale (RFC 5861 §4
 * stale-if-error: "when an error is encountered, a cached stale response MAY be used to
 * satisfy the request"), and the error itself.
 */
import { withinStaleIfError } from '../../cache/policy/reuse.ts';
import type { EdgeError } from '../../errors.ts';
import { errorDetail } from '../../origin/errors.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { Found } from '../outcomes.ts';

export type Failure =
  | { kind: 'stale'; stored: Found; why: string }
  | { kind: 'error'; error: EdgeError }
  /** The client's doing (a request body too slow or cut short): answered with close. */
  | { kind: 'client'; error: EdgeError };

/** `fetched`: the error is this request's own fetch (logged), not a failed leader's. */
export function fail(
  edge: Edge,
  ctx: RequestContext,
  stored: Found | undefined,
  error: EdgeError,
  fetched: boolean,
): Failure {
  if (error.source === 'client') {
    ctx.lookup = 'rejected';
    return { kind: 'client', error };
  }
  if (fetched) {
    ctx.origin = error.origin;
    ctx.originAttempts = (error as { attempts?: number }).attempts;
  }
  if (stored !== undefined && withinStaleIfError(stored.record, stored.directives, ctx.now)) {
    if (fetched) ctx.error = error;
    return { kind: 'stale', stored, why: error.code };
  }
  ctx.lookup = 'error';
  // Logged once: in the access-log line (err, errDetail) when there is one, else here.
  if (fetched && edge.access === undefined)
    edge.log.warn(
      { err: error.message, code: error.code, detail: errorDetail(error), url: ctx.key },
      'origin request failed',
    );
  return { kind: 'error', error };
}
