/**
 * insert: runs when triage found the response storable. The one insert path
 * (src/edge/fill-driver.ts): the fill is shared with collapsed followers, read by this
 * request's client as it arrives, and committed under the commit guard. Resolves when the
 * fill is committed or abandoned, with the insert result.
 */
import type { InsertResult, RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { fillHeaders, type InsertPlan, insertShared, type Leadership, readFill } from '../fill-driver.ts';
import type { Fetched } from '../outcomes.ts';
import { strippedOnStore } from '../rule-effects.ts';

export type Inserted = { kind: 'inserted'; insert: InsertResult };

export async function insert(
  edge: Edge,
  ctx: RequestContext,
  plan: InsertPlan,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
  lead: Leadership,
): Promise<Inserted> {
  const response = fetched.response;
  // A body still to be scanned for reflected values is not known storable when the head is sent.
  ctx.cacheStatus.stored = plan.scanner === undefined;
  ctx.id = plan.id;
  const headers = fillHeaders(edge, response, strippedOnStore(ctx));
  const insert = await insertShared(edge, ctx.storage, ctx.key, plan, response, generation, lead, (fill) =>
    readFill(edge, ctx, fill, response.status, headers),
  );
  return { kind: 'inserted', insert };
}
