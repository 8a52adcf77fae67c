/**
 * The stored response answered stale because the origin is failing (RFC 5861 §4
 * stale-if-error), as the miss path and its triage decide (phases/fail.ts, phases/triage.ts).
 */
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import type { Found } from './outcomes.ts';
import { deliverStored } from './phases/deliver.ts';

export function serveStale(edge: Edge, ctx: RequestContext, stored: Found, why: string): void {
  ctx.lookup = 'stale-if-error';
  ctx.cacheStatus.fwd = 'stale';
  ctx.cacheStatus.detail = 'stale-if-error';
  edge.log.info({ url: ctx.key, why }, 'served stale: origin failing');
  deliverStored(edge, ctx, stored.record);
}
