/**
 * insert: runs when triage found the response storable. The one insert path
 * (src/edge/fill-driver.ts): the fill is shared with collapsed followers, read by this
 * request's client as it arrives, and committed under the commit guard. Resolves when the
 * fill is committed or abandoned, with the insert result.
 */

import type { Fill } from '../../cache/fill.ts';
import { negotiateEncoding } from '../../cache/policy/accept-encoding.ts';
import { parseVary } from '../../cache/policy/vary.ts';
import { storedHeader } from '../../cache/record.ts';
import { codingsFor, makesCodings, mergeVary, settingsFor } from '../compression.ts';
import type { InsertResult, RequestContext } from '../context.ts';
import { answerDeferred } from '../derive.ts';
import type { Edge } from '../edge.ts';
import { fillHeaders, type InsertPlan, insertShared, type Leadership, readFill } from '../fill-driver.ts';
import { asksConditionally, clientHoldsCurrent, withoutContentFields } from '../not-modified.ts';
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
  // A body still to be scanned for reflected values is not known storable when the head is sent,
  // nor one whose key a purge covered since the origin was asked (the commit guard refuses it).
  ctx.cacheStatus.stored =
    plan.scanner === undefined && edge.store.purgeGeneration(ctx.storage) === generation;
  ctx.id = plan.id;
  const headers = fillHeaders(edge, response, strippedOnStore(ctx));
  // The leader's client sees the Vary the entry's headers carry (Accept-Encoding merged in where
  // the body may be coded; not for an identity variant stored under it only for its URL's sake).
  if (storedVaryNamesEncoding(plan.record.headers)) mergeVary(headers);
  // RFC 9110 §13.2.1: the fill asked the origin without the client's If-None-Match and
  // If-Modified-Since (it wants a body to store); a client whose copy is current gets its 304.
  const { etag, lastModified, responseTime } = plan.record;
  const current =
    asksConditionally(ctx) &&
    clientHoldsCurrent(ctx, {
      // A Range miss's 206 carries the representation's validators, and If-None-Match is
      // evaluated before Range (RFC 9110 §13.2.2): a client holding that representation gets 304.
      status: response.status === 206 ? 200 : response.status,
      etag,
      lastModified,
      date: storedHeader(plan.record, 'date'),
      responseTime,
    });
  const read = current
    ? (fill: Fill): void => readFill(edge, ctx, fill, 304, withoutContentFields(headers))
    : (fill: Fill): void => readFill(edge, ctx, fill, response.status, headers);
  if (defersClient(edge, ctx, plan)) {
    let started: Fill | undefined;
    const insert = await insertShared(
      edge,
      ctx.storage,
      ctx.key,
      plan,
      response,
      generation,
      lead,
      (fill) => {
        // The client is answered from the stored entry: its commit does not wait for others.
        fill.commitAtOnce();
        started = fill;
      },
    );
    ctx.insert = insert;
    await answerDeferred(edge, ctx, plan.id, started!, read);
    return { kind: 'inserted', insert };
  }
  const insert = await insertShared(edge, ctx.storage, ctx.key, plan, response, generation, lead, read);
  return { kind: 'inserted', insert };
}

/**
 * A compressible identity body for a client that wants a coding (docs/compression.md): the
 * client waits for the commit and is answered from the stored coding made from it, so it gets
 * its encoding with a real Content-Length (a HEAD leading the fill: the head a GET gets). Only
 * when the length is known and no body scan can still refuse the store.
 */
function defersClient(edge: Edge, ctx: RequestContext, plan: InsertPlan): boolean {
  if (plan.record.compressible !== true || plan.scanner !== undefined) return false;
  if (!makesCodings(edge, ctx, plan.record)) return false;
  if (plan.contentLength === undefined || plan.contentLength < settingsFor(edge, ctx).minSize) return false;
  const coding = negotiateEncoding(ctx.req.headers['accept-encoding'], codingsFor(edge, ctx));
  return coding !== null && coding !== 'identity';
}

/** Whether the stored headers' Vary lines name Accept-Encoding (plan.ts merged it in). */
function storedVaryNamesEncoding(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'vary') continue;
    const vary = parseVary(headers[i + 1]);
    if (vary !== '*' && vary.includes('accept-encoding')) return true;
  }
  return false;
}
