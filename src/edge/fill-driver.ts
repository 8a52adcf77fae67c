/**
 * The one insert path, shared by misses, partial combinations and background revalidations:
 * plan (plan.ts) → fill → commit guard → insert result. Also what the phases share
 * about fills: the leader's shared outcome, a client reading a fill, and origin bodies
 * nobody reads. Not a phase: phases import it, it imports no phase.
 */
import type { BodyWriter, CommitResult } from '../cache/body-writer.ts';
import type { LeaderOutcome } from '../cache/collapse.ts';
import { Fill, FillReader } from '../cache/fill.ts';
import type { EntryRecord } from '../cache/record.ts';
import { EdgeError } from '../errors.ts';
import { whenDrained } from '../http/connection-guard.ts';
import { cutShort } from '../http/cut-short.ts';
import { appendVia, dropLengthOfBodiless, endToEndResponseHeaders } from '../http/headers.ts';
import { formatCacheStatus, pushCacheStatus } from '../observability/cache-status.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { type ReflectionScanner, scanFeed } from '../security/poison.ts';
import type { InsertResult, RequestContext } from './context.ts';
import { decodedSibling, encodedFor } from './decode-stored.ts';
import { answerFromSibling, siblingFor, staleSiblingFor } from './derive.ts';
import type { Edge } from './edge.ts';
import type { Found, LookupOutcome } from './outcomes.ts';
import { sendError } from './respond.ts';
import { copyForClient } from './rule-effects.ts';
import { clientHeaders } from './tier.ts';

/** A storable plan: where the response goes, and the record it is stored under. */
export interface InsertPlan {
  id: string;
  record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'>;
  contentLength: number | undefined;
  /** Watches the body for reflected unkeyed request values (cache poisoning); stops the store if found. */
  scanner?: ReflectionScanner | undefined;
}

/** The collapse leadership an insert settles (a no-op one when the request does not collapse). */
export interface Leadership {
  settle: (outcome: LeaderOutcome) => void;
  /** Identifies the leadership to release; undefined when there is none to release. */
  leading: Promise<LeaderOutcome> | undefined;
  collapsible: boolean;
}

/**
 * The commit guard, checked inside the write transaction: nothing is stored once a purge
 * covered the key since `generation` was taken (before the origin was asked), and a
 * complete entry stored meanwhile wins over a partial one. `onto`: the body id the entry
 * must still have (a combination writes only onto the piece it was combined with).
 */
export function commitGuard(
  edge: Edge,
  storage: string,
  generation: string,
  plan: Pick<InsertPlan, 'id' | 'record'>,
  onto?: string,
): () => boolean {
  return () => {
    if (edge.store.purgeGeneration(storage) !== generation) return false;
    if (onto === undefined && plan.record.range === undefined) return true;
    if (onto !== undefined) return edge.store.holdsBodyInTxn(plan.id, onto);
    return !edge.store.holdsFullEntryInTxn(plan.id);
  };
}

/**
 * Commits a written body under the guard. A stored body does not go to the memory tier: a miss
 * keeps nothing per entry in memory; its first hit reads it from LMDB into the tier (store.ts).
 */
export async function commitInsert(
  writer: BodyWriter,
  plan: Pick<InsertPlan, 'id' | 'record'>,
  last: Buffer | undefined,
  guard: () => boolean,
): Promise<InsertResult> {
  return insertResult(await writer.commit(plan.id, plan.record, last, guard));
}

export function insertResult(result: CommitResult | undefined): InsertResult {
  return result === 'stored' ? 'stored' : result === 'superseded' ? 'aborted-purged' : 'aborted-store-failed';
}

/** A new fill of `storage`, writing to the store. */
export function startFill(edge: Edge, storage: string): Fill {
  return new Fill(edge.store, edge.store.createWriter(storage), true);
}

/**
 * Drives a fill from the origin body to its guarded commit. Returns the insert result: a body
 * cut short or over the size limit is never stored.
 */
export async function runFill(
  edge: Edge,
  url: string,
  fill: Fill,
  response: OriginResponse,
  plan: InsertPlan,
  guard: () => boolean,
): Promise<InsertResult> {
  const maxObject = edge.config.cache.maxObjectSize;
  // Cache poisoning: the body a client reads (decoded, when the origin coded it) is scanned for
  // an unkeyed request value reflected in it; found, it reaches this client only.
  const scan =
    plan.scanner === undefined ? undefined : scanFeed(plan.scanner, response.headers['content-encoding']);
  let tooLarge = false;
  let reflected = false;
  let abandoned = false;
  // Heard before the fill takes the chunk (its own listener comes after): the chunk counts here,
  // or a body crossing the bound in its last read was stored.
  response.body.on('data', (chunk: Buffer) => {
    if (!tooLarge && fill.received + chunk.length > maxObject) {
      tooLarge = true;
      fill.stopStoring();
    }
    if (scan !== undefined && !reflected && scan.write(chunk)) {
      reflected = true;
      fill.stopStoring();
    }
    // Not stored, and nobody reads it (a HEAD led the fill, or the client left): the rest of
    // the body is not downloaded for nothing.
    if ((tooLarge || reflected) && !abandoned && fill.readers === 0) {
      abandoned = true;
      fill.cancel();
    }
  });
  await fill.consume(response.body);
  if (abandoned) return tooLarge ? 'aborted-too-large' : 'not-storable:poison-suspect';
  const length = plan.contentLength;
  if (fill.state === 'failed' || (length !== undefined && fill.received !== length)) {
    if (fill.state !== 'failed') fill.fail(new Error('origin body length differs from Content-Length'));
    edge.log.warn(
      { url, origin: response.origin, received: fill.received, err: fill.error?.message },
      'origin response incomplete; not stored',
    );
    return 'aborted-incomplete';
  }
  if (tooLarge) return 'aborted-too-large';
  if (reflected || (scan !== undefined && (await scan.end()))) return 'not-storable:poison-suspect';
  // Nothing kept in the memory tier: a hit brings the body there (commitInsert).
  const result = await fill.finish((writer, last) => writer.commit(plan.id, plan.record, last, guard));
  return insertResult(result);
}

/**
 * The insert path of a response shared with collapsed followers: the fill is announced to
 * them (`shared`), `client` reads it if a client is waiting, and the leadership ends when the
 * fill is committed or abandoned.
 */
export async function insertShared(
  edge: Edge,
  storage: string,
  url: string,
  plan: InsertPlan,
  response: OriginResponse,
  generation: string,
  lead: Leadership,
  client?: (fill: Fill) => void,
): Promise<InsertResult> {
  const fill = startFill(edge, storage);
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => {
    markDone = resolve;
  });
  lead.settle({
    kind: 'shared',
    fill,
    status: response.status,
    headers: sharedHeaders(plan),
    vary: plan.record.vary,
    secondaryKey: plan.record.secondaryKey,
    record: plan.record,
    tags: plan.record.tags,
    done,
    scanned: plan.scanner !== undefined,
    ...(plan.contentLength === undefined
      ? {}
      : { whole: { headers: plan.record.headers, length: plan.contentLength } }),
  });
  client?.(fill);
  try {
    return await runFill(edge, url, fill, response, plan, commitGuard(edge, storage, generation, plan));
  } finally {
    if (lead.collapsible) edge.collapse.release(storage, lead.leading);
    markDone();
  }
}

/** The header set a stored copy has (for followers), with the length when known. */
function sharedHeaders(plan: InsertPlan): string[] {
  const headers = plan.record.headers;
  return plan.contentLength === undefined || plan.record.status === 204
    ? headers
    : [...headers, 'Content-Length', String(plan.contentLength)];
}

/**
 * Header list for the leader's client reading its fill (followers get the stored set; readFill
 * strips tier fields for clients); `strip`: fields a site rule keeps out of a stored response
 * (Set-Cookie), kept from this client too.
 */
export function fillHeaders(edge: Edge, response: OriginResponse, strip: readonly string[] = []): string[] {
  const drop = strip.length === 0 ? edge.stripStored : new Set([...edge.stripStored, ...strip]);
  const list = endToEndResponseHeaders(response.headers, drop);
  list.push('Via', appendVia(response.headers.via, '1.1', edge.name));
  return list;
}

/**
 * What a collapsed follower reading a fill adds: the response's Age now (its header list is the
 * stored one, without Age), and `again`: its way to ask again when the fill fails because the
 * worker writing it exited before this client was sent anything (an origin failure is answered;
 * a client sent part of the body is cut short).
 */
export interface FollowerRead {
  age: number;
  again?: (() => void) | undefined;
}

/** A client reads a fill as it arrives (each adds its own Cache-Status). */
export function readFill(
  edge: Edge,
  ctx: RequestContext,
  fill: Fill,
  status: number,
  headers: string[],
  follower?: FollowerRead,
): void {
  const res = ctx.res;
  const list = dropLengthOfBodiless(status, clientHeaders(edge, ctx, copyForClient(headers, ctx.rules)));
  if (follower !== undefined) list.push('Age', String(follower.age));
  pushCacheStatus(list, formatCacheStatus(edge.name, ctx.cacheStatus));
  list.push('X-Request-Id', ctx.requestId);
  if (ctx.hsts !== undefined) list.push('Strict-Transport-Security', ctx.hsts);
  if (ctx.method === 'HEAD' || status === 204 || status === 304) {
    res.writeHead(status, list);
    res.end();
    return;
  }
  const reader = new FillReader(
    fill,
    res,
    (ok) => {
      ctx.bytes += reader.bytes;
      if (!ok && fill.state === 'failed' && ctx.error === undefined)
        ctx.error = bodyIncomplete(fill.error, ctx.origin);
    },
    (resume) => whenDrained(res, resume),
    {
      head: () => res.writeHead(status, list),
      // Nothing of the body came: an answer the client can read, not a connection closed on a
      // head never flushed (node:http sends a head with the first body byte).
      failedEmpty: (error) => {
        const again = follower?.again;
        if (again === undefined || !fill.writerExited)
          return sendError(edge, ctx, bodyIncomplete(error, ctx.origin), false);
        // Nothing of this try is reported: the request starts over as a miss.
        ctx.error = undefined;
        ctx.lookup = 'miss';
        ctx.cacheStatus = {};
        again();
      },
      cutShort: (error) => cutShort(res, error),
    },
  );
  reader.pump();
}

/**
 * The error a response whose origin body ended before it was complete is logged (or answered)
 * with. Its message names the origin by its configured name only, as every origin error's (a
 * client reads it); what the network said stays in `cause`, for the log.
 */
export function bodyIncomplete(cause: Error | undefined, origin?: string): EdgeError {
  return new EdgeError(
    'EDGE_ERR_ORIGIN_BODY_INCOMPLETE',
    `origin ${origin === undefined ? '' : `${origin} `}response incomplete`,
    { cause, ...(origin === undefined ? {} : { origin }) },
  );
}

const UNCACHEABLE: LeaderOutcome = { kind: 'uncacheable' };
const REFUSED: LeaderOutcome = { kind: 'refused' };

/**
 * What an unstorable answer that is no server error settles its followers with: they fetch on
 * their own. An uncacheable key (a private page, no-store) is marked hit-for-pass, so that the
 * next requests do not wait for a leader in vain; a client error (4xx) or a 508 is not: it
 * answers the request that asked, its headers and its client (a deny or country rule, a rate
 * limit, a loop its CDN-Loop claims: a shield's or an origin's), and one refused client must
 * not stop the key's collapsing for everyone.
 */
export function uncacheable(status: number): LeaderOutcome {
  return (status >= 400 && status < 500) || status === 508 ? REFUSED : UNCACHEABLE;
}

/** The error waiters are answered when the origin answers their key with a server error. */
export function originFailing(status: number): EdgeError {
  return new EdgeError('EDGE_ERR_ORIGIN_FAILING', `origin answered ${status}`);
}

/**
 * Another coding of a stored object (a Vary miss on Accept-Encoding): answered from the stored
 * compressible identity entry or the coding made from it (derive.ts), or from a stored
 * origin-encoded entry decoded (decode-stored.ts), without the origin. Else `miss` runs, at
 * once or once the decoding turned out impossible, with the stored identity entry to revalidate
 * for the request when there is one not fresh (`stale`, derive.ts staleSiblingFor).
 */
export function fromSibling(
  edge: Edge,
  ctx: RequestContext,
  found: LookupOutcome,
  miss: (stale?: Found) => void,
): void {
  if (found.kind !== 'miss' || found.reason !== 'vary-miss') return miss();
  const sibling = siblingFor(edge, ctx);
  if (sibling !== undefined) return track(edge, answerFromSibling(edge, ctx, sibling, true));
  const encoded = encodedFor(edge, ctx);
  if (encoded === undefined) return miss(staleSiblingFor(edge, ctx));
  const decoded = decodedSibling(edge, ctx, encoded).catch((error: unknown) => {
    edge.log.error({ err: error, url: ctx.key }, 'decoded representation not stored');
    return undefined;
  });
  track(
    edge,
    decoded.then((made) =>
      made === undefined ? miss(staleSiblingFor(edge, ctx)) : answerFromSibling(edge, ctx, made, true),
    ),
  );
}

/**
 * Keeps `work` among the node's running work until it settles (a drain waits for it); a
 * rejection goes to `crashed` when given. One promise per request's work, where a catch then a
 * finally made two.
 */
export function track(edge: Edge, work: Promise<unknown>, crashed?: (error: unknown) => void): void {
  const settled: Promise<unknown> = work.then(
    () => edge.work.delete(settled),
    (error: unknown) => {
      edge.work.delete(settled);
      if (crashed === undefined) throw error; // unhandled, as it was
      crashed(error);
    },
  );
  edge.work.add(settled);
}

/** Drops an origin body nobody will read, without letting a late error escape. */
export function discard(body: OriginResponse['body']): void {
  body.on('error', () => {});
  body.resume();
}
