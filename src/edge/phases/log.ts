/**
 * log: runs exactly once per request, when the completion latch (src/edge/completion.ts)
 * says the response is done: one access-log line and the request's metrics. A background
 * revalidation writes a line of its own and counts what it stored. An error is logged here
 * once, with its code and what the network said (never in the client's answer).
 */

import { parserRefusalCode, refusedByParser } from '../../http/listener.ts';
import type { AccessEntry } from '../../observability/access-log.ts';
import { errorDetail } from '../../origin/errors.ts';
import { realClient } from '../client.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';

export function logRequest(edge: Edge, ctx: RequestContext, answered: boolean): void {
  // Its body's framing was refused by node:http's parser: answered, counted and logged there
  // (logParserRefusal), once.
  if (refusedByParser(ctx.req)) return;
  const { metrics } = edge;
  const seconds = (performance.now() - ctx.start) / 1000;
  metrics.lookupsBy(ctx.lookup).inc();
  metrics.requestsBy(ctx.site?.name ?? '', statusOf(ctx)).inc();
  metrics.durationBy(ctx.lookup).observe(seconds);
  if (ctx.bytes > 0) metrics.bytesBy(ctx.origin === undefined ? 'cache' : 'origin').inc(ctx.bytes);
  if (ctx.insert !== undefined) metrics.insertsBy(ctx.insert).inc();
  if (edge.access === undefined) return;
  edge.access.request(accessEntry(edge, ctx, answered, seconds));
}

/**
 * The status the client was sent; 499 (nginx's "client closed request") when it left before
 * any answer: node:http's default 200 would read as an answer nobody got.
 */
function statusOf(ctx: RequestContext): number {
  return ctx.res.headersSent ? ctx.res.statusCode : 499;
}

function accessEntry(edge: Edge, ctx: RequestContext, answered: boolean, seconds: number): AccessEntry {
  const { req, res } = ctx;
  const headers = req.headers;
  const peer = ctx.clientAddress;
  const client = realClient(edge, ctx);
  const declared = headers['content-length'];
  return {
    id: ctx.requestId,
    client,
    peer: client === peer ? undefined : peer,
    site: ctx.site?.name,
    method: ctx.method,
    host: ctx.host,
    path: ctx.path,
    protocol: ctx.protocol === '2' ? 'HTTP/2' : `HTTP/${ctx.protocol}`,
    tls: ctx.scheme === 'https',
    status: statusOf(ctx),
    cache: ctx.lookup,
    insert: ctx.insert,
    rule: ctx.rules?.name,
    origin: ctx.origin,
    originStatus: ctx.originStatus,
    originMs: ctx.originMs === undefined ? undefined : Math.round(ctx.originMs * 10) / 10,
    attempts: ctx.originAttempts,
    age: ctx.age,
    ttl: ctx.cacheStatus.ttl,
    range: headers.range,
    requestBytes: declared === undefined ? undefined : Number(declared),
    bytes: ctx.bytes,
    ms: Math.round(seconds * 10_000) / 10,
    complete: answered || res.writableFinished,
    referer: headers.referer,
    ua: headers['user-agent'],
    err: ctx.error?.code,
    errDetail: ctx.error === undefined ? undefined : errorDetail(ctx.error),
    security: ctx.security,
  };
}

/**
 * A WebSocket tunnel's line, written when it closes (edge/tunnel.ts): status 101, `bytes` sent to
 * the client and `clientBytes` sent to the origin after the 101, `ms` from the handshake's
 * arrival to the close, and which side ended it. Counted as a request (1xx) and a bypass lookup;
 * its length stays out of the request duration histogram.
 */
export function logTunnel(
  edge: Edge,
  ctx: RequestContext,
  tunnel: { toOrigin: number; toClient: number; end: string },
): void {
  const seconds = (performance.now() - ctx.start) / 1000;
  edge.metrics.lookupsBy(ctx.lookup).inc();
  edge.metrics.requestsBy(ctx.site?.name ?? '', 101).inc();
  if (edge.access === undefined) return;
  const entry = accessEntry(edge, ctx, true, seconds);
  entry.status = 101;
  entry.bytes = tunnel.toClient;
  entry.clientBytes = tunnel.toOrigin;
  entry.closedBy = tunnel.end;
  edge.access.request(entry);
}

/**
 * A request node:http's parser refused before the pipeline saw it (Content-Length with
 * Transfer-Encoding, a head over proxy.maxHeaderSize, a control byte in the target, a head too
 * slow): one access-log line, with what the parser said, and the request counted as rejected.
 * `status` undefined: the client was gone, nothing was answered (not logged as a request).
 */
export function logParserRefusal(
  edge: Edge,
  error: NodeJS.ErrnoException,
  socket: { remoteAddress?: string | undefined; encrypted?: boolean },
  status: number | undefined,
): void {
  if (status === undefined) return;
  edge.metrics.lookupsBy('rejected').inc();
  edge.metrics.requestsBy('', status).inc();
  edge.access?.request({
    id: '-',
    client: socket.remoteAddress ?? '',
    peer: undefined,
    site: undefined,
    method: '-',
    host: '-',
    path: '-',
    protocol: 'HTTP/1.1',
    tls: socket.encrypted === true,
    status,
    cache: 'rejected',
    insert: undefined,
    rule: undefined,
    origin: undefined,
    originStatus: undefined,
    originMs: undefined,
    attempts: undefined,
    age: undefined,
    ttl: undefined,
    range: undefined,
    requestBytes: undefined,
    bytes: 0,
    ms: 0,
    complete: true,
    referer: undefined,
    ua: undefined,
    err: parserRefusalCode(status),
    errDetail: [error.code, error.message].filter(Boolean).join(': '),
    security: undefined,
  });
}

/** A background revalidation's own line; its insert result counts like any other. */
export function logRevalidation(edge: Edge, ctx: RequestContext): void {
  if (ctx.insert !== undefined) edge.metrics.insertsBy(ctx.insert).inc();
  edge.access?.revalidation({
    id: ctx.requestId,
    site: ctx.site?.name,
    method: 'GET',
    host: ctx.host,
    path: ctx.path,
    cache: ctx.lookup,
    insert: ctx.insert,
    origin: ctx.origin,
    originStatus: ctx.originStatus,
    originMs: ctx.originMs === undefined ? undefined : Math.round(ctx.originMs * 10) / 10,
    ms: Math.round((performance.now() - ctx.start) * 10) / 10,
    err: ctx.error?.code,
    errDetail: ctx.error === undefined ? undefined : errorDetail(ctx.error),
  });
}
