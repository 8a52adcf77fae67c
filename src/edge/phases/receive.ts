/**
 * receive: first phase of every request. Validates the version, method, framing, target and
 * Host (refused, and the connection closed, on anything ambiguous), then resolves the site
 * (421 when no site claims the Host). A request that expects 100-continue is told to send its
 * body only once it is accepted. Returns false when it has answered the request itself.
 */

import { EdgeError } from '../../errors.ts';
import { ALLOWED_METHODS, checkRequestTarget } from '../../http/request-target.ts';
import { formatCacheStatus } from '../../observability/cache-status.ts';
import { REQUEST_ID_HEADER, requestIdFor } from '../../observability/request-id.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { sendError } from '../respond.ts';
import { acceptTier } from '../tier.ts';

export function receive(edge: Edge, ctx: RequestContext): boolean {
  ctx.requestId = requestIdFor(ctx.req.headers[REQUEST_ID_HEADER], edge.trusted, ctx.clientAddress);
  const target = checkRequestTarget(ctx.req, ctx.scheme);
  if (!target.ok) {
    ctx.lookup = 'rejected';
    const error = new EdgeError(target.code, target.reason);
    const allow =
      target.code === 'EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED' ? { allow: ALLOWED_METHODS } : undefined;
    // An unmet expectation leaves the request well framed: its body is read and dropped, and the
    // connection goes on (RFC 9110 §10.1.1), unless the client waits for a 100 it will not get
    // (`100-continue, foo`): then the answer closes the connection (sendError).
    sendError(edge, ctx, error, target.code !== 'EDGE_ERR_CLIENT_EXPECTATION', allow);
    return false;
  }
  ctx.host = target.host;
  ctx.path = target.path;
  ctx.site = edge.sites.resolve(target.host);
  if (ctx.site === undefined) {
    ctx.lookup = 'rejected';
    sendError(
      edge,
      ctx,
      new EdgeError('EDGE_ERR_CLIENT_MISDIRECTED', `no site for host ${target.host}`),
      false,
    );
    return false;
  }
  if (ctx.path === '*') {
    answerServerOptions(edge, ctx);
    return false;
  }
  acceptTier(edge, ctx);
  if (ctx.scheme === 'https') ctx.hsts = ctx.site.hsts;
  else if (ctx.site.httpsPort !== undefined) {
    redirectToHttps(edge, ctx, ctx.site.httpsPort);
    return false;
  }
  return true;
}

/**
 * RFC 9110 §9.3.7: `OPTIONS *` asks about the server in general, not a resource: the server
 * the client reached is this node, so it answers with the methods it forwards. An origin request
 * cannot carry the asterisk (its client sends paths only), and the origin is not asked.
 */
function answerServerOptions(edge: Edge, ctx: RequestContext): void {
  ctx.lookup = 'bypass';
  ctx.cacheStatus.detail = 'server-options';
  const headers: Record<string, string> = {
    allow: ALLOWED_METHODS,
    'content-length': '0',
    'cache-control': 'no-store',
    'cache-status': formatCacheStatus(edge.name, ctx.cacheStatus),
    'x-request-id': ctx.requestId,
  };
  if (ctx.scheme === 'https' && ctx.site?.hsts !== undefined)
    headers['strict-transport-security'] = ctx.site.hsts;
  ctx.res.writeHead(200, headers);
  ctx.res.end();
}

/**
 * RFC 9110 §15.4.9: 308 keeps the method and body. The host without its port, then the https
 * port when it is not 443; the target as received (canonical form).
 */
function redirectToHttps(edge: Edge, ctx: RequestContext, port: number): void {
  ctx.lookup = 'bypass';
  ctx.cacheStatus.detail = 'https-redirect';
  const name = ctx.host.startsWith('[')
    ? ctx.host.slice(0, ctx.host.indexOf(']') + 1)
    : ctx.host.split(':')[0]!;
  const location = `https://${name}${port === 443 ? '' : `:${port}`}${ctx.path}`;
  const body = `308 see ${location}\n`;
  ctx.res.writeHead(308, {
    location,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'cache-status': formatCacheStatus(edge.name, ctx.cacheStatus),
    'x-request-id': ctx.requestId,
  });
  ctx.res.end(ctx.method === 'HEAD' ? undefined : body);
  ctx.bytes += body.length;
}
