/**
 * derive: a request whose Accept-Encoding bucket has no stored representation, while the
 * identity entry of the same object is stored and compressible, gets its coding made from the
 * stored bytes — never from a second origin fetch. The compression runs in the libuv pool
 * (bounded), the result is committed as a sibling variant under the same key and tags and
 * the same purge guard, and the request is answered from it. Concurrent requests for the same
 * sibling share one compression. Runs on the miss path only: a hit never compresses.
 */

import type { Fill } from '../cache/fill.ts';
import { variantKey } from '../cache/key.ts';
import { acceptsCoding, type ContentCoding, negotiateEncoding } from '../cache/policy/accept-encoding.ts';
import { decideReuse, requestDirectives } from '../cache/policy/reuse.ts';
import { secondaryKey } from '../cache/policy/vary.ts';
import type { EntryRecord } from '../cache/record.ts';
import { EdgeError } from '../errors.ts';
import type { EncoderLevels } from '../transform/encoder.ts';
import { codingsFor, encoderOf, makesCodings, settingsFor, suffixEtag } from './compression.ts';
import type { InsertResult, RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import type { Found } from './outcomes.ts';
import { deliverStored } from './phases/deliver.ts';
import { sendError } from './respond.ts';
import { clientDirectives } from './rule-effects.ts';

/** A stored identity entry that can stand for, or give, the request's representation. */
export interface Sibling {
  id: string;
  record: EntryRecord;
  /** The coding to make (undefined: identity is what this request gets). */
  coding: ContentCoding | undefined;
}

const inFlight = new WeakMap<Edge, Map<string, Promise<Derived>>>();

export type Derived = { kind: 'stored'; id: string; record: EntryRecord } | { kind: 'identity' };

/**
 * The identity entry for this request's object when it may answer it (synchronous LMDB reads):
 * stored as compressible, fresh enough to serve as it is. Undefined: take the miss path.
 */
export function siblingFor(edge: Edge, ctx: RequestContext): Sibling | undefined {
  const headers = ctx.req.headers;
  const found = edge.store.lookup(ctx.storage, { ...headers, 'accept-encoding': 'identity' });
  if (found.kind !== 'found' || found.record.compressible !== true) return undefined;
  const record = found.record;
  if (ctx.req.headers.authorization !== undefined && !record.authOk) return undefined;
  const directives = requestDirectives(headers['cache-control'], headers.pragma as string | undefined);
  if (decideReuse(record, directives, ctx.now).kind !== 'fresh') return undefined;
  const coding = negotiateEncoding(headers['accept-encoding'], codingsFor(edge, ctx));
  if (coding === null) return undefined;
  if (
    coding === 'identity' ||
    record.size < settingsFor(edge, ctx).minSize ||
    !makesCodings(edge, ctx, record)
  ) {
    // The client gets identity when it takes it; else the miss path decides (406 or the origin's).
    return acceptsCoding(headers['accept-encoding'], 'identity')
      ? { id: found.id, record, coding: undefined }
      : undefined;
  }
  return { id: found.id, record, coding };
}

/**
 * The stored identity entry of this request's object when it may not answer as it is (stale, or
 * the request asks for validation) but gives the request its representation once validated:
 * the miss path revalidates it (If-None-Match with its tag; a 304 keeps it and the codings made
 * of it) instead of fetching the object anew, and a Range request is no Range miss, whose 206
 * stored as a partial entry replaced every representation of the URL. `coding`: the one to make
 * of it then (undefined: the request gets identity). Undefined: the miss path as it is.
 */
export function staleSiblingFor(edge: Edge, ctx: RequestContext): Found | undefined {
  const headers = ctx.req.headers;
  const found = edge.store.lookup(ctx.storage, { ...headers, 'accept-encoding': 'identity' });
  if (found.kind !== 'found' || found.record.compressible !== true || found.record.range !== undefined)
    return undefined;
  const record = found.record;
  if (headers.authorization !== undefined && !record.authOk) return undefined;
  // Served identity when the revalidation leaves it stale (served stale, or not updated).
  if (!acceptsCoding(headers['accept-encoding'], 'identity')) return undefined;
  const coding = negotiateEncoding(headers['accept-encoding'], codingsFor(edge, ctx));
  if (coding === null) return undefined;
  const makes =
    coding !== 'identity' && record.size >= settingsFor(edge, ctx).minSize && makesCodings(edge, ctx, record);
  const directives = clientDirectives(ctx);
  const reuse = decideReuse(record, directives, ctx.now);
  return { kind: 'found', id: found.id, record, reuse, directives, coding: makes ? coding : undefined };
}

/**
 * Answers a request whose stored response a 304 refreshed: from the updated record, or, for an
 * identity entry that stood in for the request's coding, from the coding made of it.
 */
export function answerRefreshed(
  edge: Edge,
  ctx: RequestContext,
  stored: Found,
  refreshed: { record: EntryRecord; insert: InsertResult; received: string | undefined },
): Promise<void> | undefined {
  const { record, insert, received } = refreshed;
  if (stored.coding !== undefined && insert === 'updated')
    return answerFromSibling(edge, ctx, { id: stored.id, record, coding: stored.coding }, false, received);
  deliverStored(edge, ctx, record, received);
  return undefined;
}

/** Answers from the stored identity entry or the coding derived from it; `hit`: reported as one. */
export async function answerFromSibling(
  edge: Edge,
  ctx: RequestContext,
  sibling: Sibling,
  hit: boolean,
  received?: string,
): Promise<void> {
  const derived = await derive(edge, ctx, sibling).catch((error: unknown): Derived => {
    edge.log.error({ err: error, url: ctx.key }, 'compressed representation not stored');
    return { kind: 'identity' };
  });
  const answer = derived.kind === 'stored' ? derived : sibling;
  ctx.id = answer.id;
  if (hit) {
    ctx.lookup = 'hit';
    ctx.cacheStatus.hit = true;
  }
  try {
    deliverStored(edge, ctx, answer.record, received);
  } catch (error) {
    // After an await nothing above catches: answered here, never an unhandled rejection.
    edge.log.error({ err: error, url: ctx.key }, 'request failed inside the node');
    sendError(edge, ctx, new EdgeError('EDGE_ERR_INTERNAL', 'internal error', { cause: error }), true);
  }
}

/**
 * A client that waited for its identity fill (insert's `defersClient`) is answered from that
 * fill, never from a new lookup: a response stale on arrival (no lifetime) or a request with
 * `no-cache` is still this request's own answer. The entry it committed gives the coding (made
 * and stored from it). When the store did not keep it (a purge or an invalidation raced the
 * fill) or another fill replaced it meanwhile, the client reads the fill as it came: its chunks
 * stay readable for their grace period, a small body is whole in memory. A body cut short is a
 * 502; one the failing store lost before the client could read it, a 500.
 */
export function answerDeferred(
  edge: Edge,
  ctx: RequestContext,
  id: string,
  fill: Fill,
  readIdentity: (fill: Fill) => void,
): Promise<void> | undefined {
  if (fill.state === 'failed' || ctx.insert === 'aborted-incomplete') {
    const error = new EdgeError('EDGE_ERR_ORIGIN_BODY_INCOMPLETE', `response not stored (${ctx.insert})`);
    sendError(edge, ctx, error, false);
    return undefined;
  }
  const stored = ctx.insert === 'stored' ? committedEntry(edge, id, fill) : undefined;
  const coding = negotiateEncoding(ctx.req.headers['accept-encoding'], codingsFor(edge, ctx));
  if (stored !== undefined && coding !== null && coding !== 'identity')
    return answerFromSibling(edge, ctx, { id, record: stored, coding }, false);
  if (fill.completeChunks !== undefined || fill.wholeBody() !== undefined) {
    readIdentity(fill);
    return undefined;
  }
  const error = new EdgeError('EDGE_ERR_STORE_WRITE', `response body lost (${ctx.insert})`);
  sendError(edge, ctx, error, false);
  return undefined;
}

/** The entry a fill committed under `id`, unless another replaced or removed it since. */
function committedEntry(edge: Edge, id: string, fill: Fill): EntryRecord | undefined {
  let stored = edge.store.current(id);
  if (stored?.kind !== 'entry' || stored.bodyId !== fill.bodyId) {
    // A read snapshot taken earlier in this event-loop turn may predate the commit.
    edge.store.resetReadTxn();
    stored = edge.store.current(id);
  }
  return stored?.kind === 'entry' && stored.bodyId === fill.bodyId ? stored : undefined;
}

/** Makes (or finds, or joins the making of) the sibling in `sibling.coding`. */
export function derive(edge: Edge, ctx: RequestContext, sibling: Sibling): Promise<Derived> {
  const coding = sibling.coding;
  if (coding === undefined) return Promise.resolve({ kind: 'identity' });
  const selecting = { ...ctx.req.headers, 'accept-encoding': coding };
  const secondary = secondaryKey(sibling.record.vary, selecting);
  const id = variantKey(ctx.storage, secondary);
  const existing = edge.store.lookup(ctx.storage, selecting);
  // A sibling made from this identity entry (not an older one it replaced) is used as it is.
  const made = existing.kind === 'found' ? existing.record : undefined;
  if (
    made?.contentEncoding === coding &&
    made.originEtag === (sibling.record.originEtag ?? sibling.record.etag) &&
    made.storedAt >= sibling.record.storedAt
  )
    return Promise.resolve({ kind: 'stored', id: (existing as { id: string }).id, record: made });
  const levels = settingsFor(edge, ctx).levels;
  return madeOnce(edge, id, () => make(edge, ctx.storage, sibling, coding, levels, id, secondary));
}

/**
 * One making of a representation per variant id at a time (a coding made here, an identity
 * decoded in decode-stored.ts): a request for one being made joins it.
 */
export function madeOnce(edge: Edge, id: string, start: () => Promise<Derived>): Promise<Derived> {
  const table = inFlight.get(edge) ?? new Map<string, Promise<Derived>>();
  inFlight.set(edge, table);
  let work = table.get(id);
  if (work === undefined) {
    work = start().finally(() => table.delete(id));
    table.set(id, work);
  }
  return work;
}

function make(
  edge: Edge,
  storage: string,
  sibling: Sibling,
  coding: ContentCoding,
  levels: EncoderLevels,
  id: string,
  secondary: string,
): Promise<Derived> {
  return representationFrom(edge, storage, sibling, {
    id,
    coding,
    transform: (body) => encoderOf(edge).encode(coding, body, levels),
    record: () => siblingRecord(sibling.record, coding, secondary),
    failure: 'compression failed: identity served',
  });
}

/**
 * Makes a representation from a stored entry's bytes (`from`) and commits it as a variant of
 * its own, and returns it; identity when it could not be made (body unreadable, the encoder's
 * queue full, the transform failed: logged) or not stored. Stored only while the entry it came
 * from is still the one stored and no purge covered the key since its bytes were read.
 */
export async function representationFrom(
  edge: Edge,
  storage: string,
  from: { id: string; record: EntryRecord },
  made: {
    id: string;
    /** The coding made or decoded, for the log. */
    coding: string;
    /** The new bytes from the stored ones; undefined when the encoder's queue is full. */
    transform: (body: Buffer) => Promise<Buffer> | undefined;
    record: (bytes: Buffer) => Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'>;
    failure: string;
  },
): Promise<Derived> {
  // Taken before the bytes are read: a purge from here on voids what is made from them.
  const generation = edge.store.purgeGeneration(storage);
  // A body the encoder would refuse is not read (a large one would be copied whole for nothing).
  if (!encoderOf(edge).admits(from.record.size)) return { kind: 'identity' };
  const source = readBody(edge, from.record);
  const running = source === undefined ? undefined : made.transform(source);
  if (running === undefined) return { kind: 'identity' };
  let body: Buffer;
  try {
    body = await running;
  } catch (error) {
    edge.log.warn({ err: error, url: from.record.url, coding: made.coding }, made.failure);
    return { kind: 'identity' };
  }
  const id = made.id;
  const writer = edge.store.createWriter(storage);
  // The requests that asked for it are answered from the stored representation: no waiting.
  writer.commitAtOnce();
  const chunkSize = from.record.chunkSize;
  let offset = 0;
  for (; offset + chunkSize < body.length; offset += chunkSize)
    await writer.write(body.subarray(offset, offset + chunkSize));
  const last = body.subarray(offset);
  const result = await writer.commit(id, made.record(body), last.length > 0 ? last : undefined, () => {
    if (edge.store.purgeGeneration(storage) !== generation) return false;
    return edge.store.holdsBodyInTxn(from.id, from.record.bodyId);
  });
  if (result !== 'stored') return { kind: 'identity' };
  if (edge.store.memory.accepts(body.length)) edge.store.memory.set(writer.bodyId, body);
  const stored = edge.store.current(id);
  return stored?.kind === 'entry' ? { kind: 'stored', id, record: stored } : { kind: 'identity' };
}

/** The whole stored body from the memory tier or LMDB, checked; undefined when unreadable. */
function readBody(edge: Edge, record: EntryRecord): Buffer | undefined {
  const small = edge.store.smallBody(record);
  if (small !== undefined) return small;
  const parts: Buffer[] = [];
  for (let i = 0; i < record.chunks; i++) {
    const chunk = edge.store.chunk(record.bodyId, i);
    if (chunk === undefined) return undefined;
    parts.push(chunk);
  }
  const body = Buffer.concat(parts, record.size);
  return body.length === record.size ? body : undefined;
}

/** The identity record's fields with the coding's headers and entity tag. */
function siblingRecord(
  source: EntryRecord,
  coding: ContentCoding,
  secondary: string,
): Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> {
  const { bodyId: _b, chunks: _c, size: _s, sums: _u, sum: _m, compressible: _x, ...fields } = source;
  const headers: string[] = [];
  for (let i = 0; i < source.headers.length; i += 2) {
    const name = source.headers[i]!;
    const lower = name.toLowerCase();
    if (lower === 'content-encoding') continue;
    headers.push(
      name,
      lower === 'etag' ? suffixEtag(source.headers[i + 1]!, coding) : source.headers[i + 1]!,
    );
  }
  headers.push('Content-Encoding', coding);
  const record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> = {
    ...fields,
    headers,
    contentEncoding: coding,
    secondaryKey: secondary,
    etag: source.etag === undefined ? undefined : suffixEtag(source.etag, coding),
    made: true,
  };
  // The origin's tag: an identity the node decoded (decode-stored.ts) stands for the origin's.
  const origin = source.originEtag ?? source.etag;
  if (origin !== undefined) record.originEtag = origin;
  return record;
}
