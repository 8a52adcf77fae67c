/**
 * deliver: answers from a stored entry — Age, Cache-Status, client conditionals (304),
 * HEAD, and single byte ranges (206) — from the memory tier when the body is hot, or
 * streamed chunk by chunk from LMDB. Synchronous up to the first byte written. Runs for a
 * hit, and after refresh, combine or a stale-if-error verdict; returns true when the whole
 * response was written at once, false when a body streams on.
 */

import { ChunkLease } from '../../cache/chunk-pool.ts';
import { isConditional, notModified, requestedRange } from '../../cache/policy/conditional.ts';
import { rangeWithin } from '../../cache/policy/partial.ts';
import { currentAge, remainingFreshness } from '../../cache/policy/reuse.ts';
import { type EntryRecord, storedHeader } from '../../cache/record.ts';
import { SEND_BUFFER, whenDrained } from '../../http/connection-guard.ts';
import { cutShort } from '../../http/cut-short.ts';
import type { H2Response } from '../../http/h2-exchange.ts';
import { endPrepared } from '../../http/prepared-head.ts';
import { appendCacheStatus, formatCacheStatus } from '../../observability/cache-status.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { withoutContentFields } from '../not-modified.ts';
import { copyForClient, sharedForClient } from '../rule-effects.ts';
import { clientVisible, tierAge } from '../tier.ts';

/**
 * Answers the request from `record`. Cache-Status parts must already be set on ctx. `received`:
 * the Cache-Status members of the 304 that refreshed the record (a parent tier's), put before
 * ours; a hit has none. Returns true when the whole response was written at once, false when a
 * large body streams on.
 */
export function deliverStored(
  edge: Edge,
  ctx: RequestContext,
  record: EntryRecord,
  received?: string,
): boolean {
  if (record.range !== undefined) return deliverPartial(edge, ctx, record, received);
  const { res } = ctx;
  const age = tierAge(ctx, record, currentAge(record, ctx.now));
  ctx.age = age;
  if (ctx.cacheStatus.hit) ctx.cacheStatus.ttl = Math.floor(remainingFreshness(record, ctx.now));
  const visible = record.tierFields ? clientVisible(edge, ctx, record.headers) : record.headers;
  const list = sharedForClient(visible, ctx.rules);
  const cacheStatus = appendCacheStatus(received, formatCacheStatus(edge.name, ctx.cacheStatus));
  edge.store.touch(ctx.id || ctx.storage);
  const fields = ctx.req.headers;
  const conditional = isConditional(fields);
  const plain = !conditional && ctx.method === 'GET' && fields.range === undefined && record.size > 0;
  if (plain && ctx.protocol !== '2' && endPreparedHit(edge, ctx, record, list, age, cacheStatus)) return true;
  const headers = list.slice();
  headers.push('Age', String(age), 'Cache-Status', cacheStatus, 'X-Request-Id', ctx.requestId);
  if (ctx.hsts !== undefined) headers.push('Strict-Transport-Security', ctx.hsts);
  if (conditional && notModified(ctx.method, fields, record, storedHeader(record, 'date'), ctx.now)) {
    // RFC 9110 §15.4.5: a 304 carries the fields a 200 would, minus the content ones.
    res.writeHead(304, withoutContentFields(headers));
    res.end();
    return true;
  }
  const range = requestedRange(ctx.method, fields, record);
  if (range === 'unsatisfiable') {
    headers.push('Content-Range', `bytes */${record.size}`, 'Content-Length', '0');
    res.writeHead(416, headers);
    res.end();
    return true;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : record.size - 1;
  const length = end - start + 1;
  if (record.status !== 204) headers.push('Content-Length', String(Math.max(0, length)));
  if (range) headers.push('Content-Range', `bytes ${start}-${end}/${record.size}`);
  res.writeHead(range ? 206 : record.status, headers);
  if (ctx.method === 'HEAD' || record.size === 0) {
    res.end();
    return true;
  }
  const body = edge.store.smallBody(record);
  if (body !== undefined) {
    ctx.bytes += length;
    return endBody(edge, ctx, range ? body.subarray(start, end + 1) : body);
  }
  streamChunks(edge, ctx, record, start, end);
  return false;
}

/**
 * What one HTTP/2 connection may hold of bodies written whole: half of what its session memory
 * bound leaves once every stream it may open has a SEND_BUFFER piece queued (1 MiB with the
 * defaults: 10 MiB, 128 streams). Pieces and whole bodies together then stay under the bound
 * even for a client that reads nothing.
 */
function wholeBudget(edge: Edge): number {
  const { maxSessionMemory, maxConcurrentStreams } = edge.config.http2;
  return Math.max(0, maxSessionMemory - maxConcurrentStreams * SEND_BUFFER) / 2;
}

/**
 * A body held in memory: in one write, except on HTTP/2 when the connection's bodies written
 * whole and not yet done would pass its budget (wholeBudget, from `http2.maxSessionMemory`):
 * then in pieces of SEND_BUFFER, each once the stream took the last. What a connection's streams
 * have queued counts against that bound, and past it node:http2 refuses every new stream with
 * ENHANCE_YOUR_CALM: all written whole, a few large hits at once on one connection (ten 4 MiB
 * ones, or a hundred 150 KiB images of one page) got the next requests refused. Returns whether
 * the response ended at once.
 */
function endBody(edge: Edge, ctx: RequestContext, data: Buffer): boolean {
  const res = ctx.res;
  if (ctx.protocol !== '2' || data.length <= SEND_BUFFER) {
    res.end(data);
    return true;
  }
  if ((res as unknown as H2Response).endWithin(data, wholeBudget(edge))) return true;
  let offset = 0;
  const pump = (): void => {
    while (!res.destroyed) {
      const piece = data.subarray(offset, offset + SEND_BUFFER);
      offset += piece.length;
      if (offset >= data.length) {
        res.end(piece);
        return;
      }
      if (!res.write(piece)) {
        whenDrained(res, pump);
        return;
      }
    }
  };
  pump();
  return false;
}

/** The common HTTP/1.1 hit: the head from prepared text, the body from the memory tier in one write. */
function endPreparedHit(
  edge: Edge,
  ctx: RequestContext,
  record: EntryRecord,
  list: readonly string[],
  age: number,
  cacheStatus: string,
): boolean {
  const body = edge.store.smallBody(record);
  if (body === undefined) return false;
  const extra = ['Age', String(age), 'Cache-Status', cacheStatus, 'X-Request-Id', ctx.requestId];
  if (ctx.hsts !== undefined) extra.push('Strict-Transport-Security', ctx.hsts);
  if (!endPrepared(ctx.res, record.status, list, extra, body)) return false;
  ctx.bytes += body.length;
  return true;
}

/**
 * RFC 9111 §3.3: answers a Range request from a partial entry — always a 206 ("A cache MUST
 * NOT send a partial response to a client without explicitly marking it"), and only for a
 * range wholly inside the stored piece (the lookup sent anything else to the origin).
 */
function deliverPartial(
  edge: Edge,
  ctx: RequestContext,
  record: EntryRecord,
  received: string | undefined,
): boolean {
  const { res } = ctx;
  const piece = record.range!;
  const range = rangeWithin(ctx.req.headers.range, piece);
  if (range === undefined) {
    res.destroy(new Error('partial entry asked for a range it does not hold'));
    return false;
  }
  if (ctx.cacheStatus.hit) ctx.cacheStatus.ttl = Math.floor(remainingFreshness(record, ctx.now));
  const length = range.end - range.start + 1;
  const visible = record.tierFields ? clientVisible(edge, ctx, record.headers) : record.headers;
  const headers = copyForClient(visible, ctx.rules);
  ctx.age = tierAge(ctx, record, currentAge(record, ctx.now));
  headers.push(
    'Age',
    String(ctx.age),
    'Cache-Status',
    appendCacheStatus(received, formatCacheStatus(edge.name, ctx.cacheStatus)),
    'X-Request-Id',
    ctx.requestId,
    'Content-Range',
    `bytes ${range.start}-${range.end}/${piece.complete ?? '*'}`,
    'Content-Length',
    String(length),
  );
  if (ctx.hsts !== undefined) headers.push('Strict-Transport-Security', ctx.hsts);
  edge.store.touch(ctx.id || ctx.storage);
  res.writeHead(206, headers);
  const offset = range.start - piece.start;
  const body = edge.store.smallBody(record);
  if (body !== undefined) {
    ctx.bytes += length;
    return endBody(edge, ctx, body.subarray(offset, offset + length));
  }
  streamChunks(edge, ctx, record, offset, offset + length - 1);
  return false;
}

/**
 * Streams bytes start..end of a large body from LMDB with backpressure: one chunk read at a
 * time, written in pieces of at most SEND_BUFFER bytes, the next only once the client took
 * the last (a client that takes nothing within the send timeout is cut off).
 */
function streamChunks(
  edge: Edge,
  ctx: RequestContext,
  record: EntryRecord,
  start: number,
  end: number,
): void {
  const { res } = ctx;
  const pool = edge.store.chunkPool;
  let index = Math.floor(start / record.chunkSize);
  let offset = start - index * record.chunkSize;
  let remaining = end - start + 1;
  let chunk: Buffer | undefined;
  // The chunk being written, in a pool buffer that goes back once its writes are done.
  let lease: ChunkLease | undefined;
  const pump = (): void => {
    while (remaining > 0) {
      if (res.destroyed) {
        lease?.pass();
        return;
      }
      if (chunk === undefined) {
        chunk = edge.store.pooledChunk(record.bodyId, index);
        if (chunk !== undefined && pool.owns(chunk)) lease = new ChunkLease(pool, chunk);
      }
      if (chunk === undefined) {
        cutShort(res, new Error('stored body chunk missing'));
        return;
      }
      const piece = chunk.subarray(offset, Math.min(chunk.length, offset + remaining, offset + SEND_BUFFER));
      if (piece.length === 0) {
        lease?.pass();
        cutShort(res, new Error('stored body shorter than its record'));
        return;
      }
      const sent = lease?.writing();
      offset += piece.length;
      if (offset >= chunk.length) {
        index++;
        offset = 0;
        chunk = undefined;
        lease?.pass();
        lease = undefined;
      }
      remaining -= piece.length;
      ctx.bytes += piece.length;
      if (!(sent === undefined ? res.write(piece) : res.write(piece, sent))) {
        whenDrained(res, pump);
        return;
      }
    }
    lease?.pass();
    res.end();
  };
  pump();
}
