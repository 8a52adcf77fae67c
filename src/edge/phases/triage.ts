/**
 * triage: runs once the origin answered a request fetched to be stored (and in a background
 * revalidation). Decides what the answer becomes:
 * - `stale-on-error`: a server error while a stored response may be served stale instead
 *   (RFC 5861 §4; in the background, a server error never replaces the stored response);
 * - `refresh`: a 304 for the stored response being validated (RFC 9111 §4.3.3);
 * - `combine`: the rest of a stored partial entry (RFC 9111 §3.4);
 * - `insert`: storable — stored while it is delivered;
 * - `relay`: not storable (the reason) — delivered unstored; `failing` when a server error.
 */
import { withinStaleIfError } from '../../cache/policy/reuse.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { InsertPlan } from '../fill-driver.ts';
import type { Fetched, Found } from '../outcomes.ts';
import type { Combinable } from '../partials.ts';
import { planStore } from '../plan.ts';
import { matchesStored } from '../revalidate.ts';

/** Origin statuses that stale-if-error may hide (RFC 5861 §4). */
const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

export type Triage =
  | { kind: 'stale-on-error' }
  | { kind: 'refresh'; stored: Found }
  | { kind: 'refetch' }
  | { kind: 'combine'; partial: Combinable }
  | { kind: 'insert'; plan: InsertPlan }
  | { kind: 'relay'; reason: string; failing: boolean };

export function triage(
  edge: Edge,
  ctx: RequestContext,
  stored: Found | undefined,
  fetched: Extract<Fetched, { kind: 'response' }>,
  partial: Combinable | undefined,
  background: boolean,
): Triage {
  const status = fetched.response.status;
  const failing = ERROR_STATUSES.has(status);
  if (
    stored !== undefined &&
    failing &&
    (background || withinStaleIfError(stored.record, stored.directives, ctx.now))
  )
    return { kind: 'stale-on-error' };
  if (status === 304 && stored !== undefined)
    return matchesStored(stored.record, fetched.response) ? { kind: 'refresh', stored } : { kind: 'refetch' };
  if (partial !== undefined && (status === 206 || status === 200)) return { kind: 'combine', partial };
  const plan = planStore(edge, ctx, fetched.response, fetched.requestTime, fetched.responseTime);
  if (!plan.storable) return { kind: 'relay', reason: plan.reason, failing };
  return { kind: 'insert', plan };
}
