/**
 * log: runs exactly once per request, when the completion latch (src/edge/completion.ts)
 * says the response is done: one access-log line and the request's metrics. A background
 * revalidation writes a line of its own and counts what it stored.
 */
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';

export function logRequest(edge: Edge, ctx: RequestContext, answered: boolean): void {
  const { metrics } = edge;
  metrics.lookupsBy(ctx.lookup).inc();
  if (ctx.bytes > 0) metrics.bytesBy(ctx.origin === undefined ? 'cache' : 'origin').inc(ctx.bytes);
  if (ctx.insert !== undefined) metrics.inserts.labels(ctx.insert).inc();
  if (!edge.config.logging.access) return;
  const res = ctx.res;
  edge.log.info(
    {
      method: ctx.method,
      host: ctx.host,
      path: ctx.path,
      status: res.statusCode,
      cache: ctx.lookup,
      insert: ctx.insert,
      origin: ctx.origin,
      originStatus: ctx.originStatus,
      originMs: ctx.originMs === undefined ? undefined : Math.round(ctx.originMs * 10) / 10,
      attempts: ctx.originAttempts,
      bytes: ctx.bytes,
      ms: Math.round((performance.now() - ctx.start) * 10) / 10,
      complete: answered || res.writableFinished,
      client: ctx.clientAddress,
      err: ctx.error?.code,
      security: ctx.security,
      rule: ctx.rules?.name,
    },
    'request completed',
  );
}

/** A background revalidation's own line; its insert result counts like any other. */
export function logRevalidation(edge: Edge, ctx: RequestContext): void {
  if (ctx.insert !== undefined) edge.metrics.inserts.labels(ctx.insert).inc();
  if (!edge.config.logging.access) return;
  edge.log.info(
    {
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
    },
    'background revalidation completed',
  );
}
