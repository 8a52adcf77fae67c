/**
 * guard: runs after receive, before lookup, on every request of a site: its address and
 * country rules, request filters and limits, then its request rate (GCRA per key). A refused
 * request is answered here (403, 413, 414, 431 or 429 with Retry-After and the IETF
 * RateLimit-Policy/RateLimit fields) and the phase returns false. Synchronous and
 * allocation-free for an admitted request: a hit still never awaits.
 *
 * `admitToOrigin` is its second half, asked by the pipeline where a request is about to leave
 * for the origin (miss, pass, revalidation, client no-cache): the site's origin-bound rate.
 */
import { EdgeError, type ErrorCode } from '../../errors.ts';
import { hasRequestBody } from '../../http/request-body.ts';
import type { Refusal } from '../../security/site-guard.ts';
import { realClient } from '../client.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { sendError } from '../respond.ts';
import { noteSecurity } from '../security-note.ts';

const LIMIT_ERRORS = {
  'url-length': ['EDGE_ERR_CLIENT_URL_TOO_LONG', 'request target too long'],
  'header-count': ['EDGE_ERR_CLIENT_HEADERS_TOO_LARGE', 'too many request header fields'],
  'header-bytes': ['EDGE_ERR_CLIENT_HEADERS_TOO_LARGE', 'request header section too large'],
  'body-size': ['EDGE_ERR_CLIENT_BODY_TOO_LARGE', 'request body too large'],
} as const satisfies Record<string, readonly [ErrorCode, string]>;

const FORBIDDEN_MESSAGES = {
  deny: 'forbidden: your address is not allowed on this site',
  country: 'forbidden: this site is not available from your location',
  block: 'forbidden: this request is not allowed on this site',
} as const;

/** Requests already counted against the origin-bound rate (a pass after a collapse verdict asks again). */
const countedForOrigin = new WeakSet<RequestContext>();

export function guard(edge: Edge, ctx: RequestContext): boolean {
  const siteGuard = ctx.site?.guard;
  if (siteGuard === undefined) return true;
  const req = ctx.req;
  const address = judged(edge, ctx);
  // Ambiguity is in the spelling the client sent (origin form), not in the canonical path.
  const spelled = req.url?.startsWith('/') ? req.url : ctx.path;
  const refusal = siteGuard.check(
    address,
    ctx.method,
    ctx.path,
    req.headers,
    req.rawHeaders,
    ctx.now,
    spelled,
    req.httpVersionMajor === 2,
  );
  if (refusal !== undefined) {
    refuse(edge, ctx, refusal);
    return false;
  }
  // A GET or HEAD with a body (a "fat" request) may mean something the key does not hold:
  // it is forwarded as it is, never answered from cache nor stored.
  if ((ctx.method === 'GET' || ctx.method === 'HEAD') && hasRequestBody(req)) {
    ctx.passReason = 'fat-request';
    noteSecurity(edge, ctx, 'fat-request', 'passed');
  }
  return true;
}

/**
 * Asked where the request is about to leave for the origin; counts it (once) against the
 * site's origin-bound rate. False: answered 429 here.
 */
export function admitToOrigin(edge: Edge, ctx: RequestContext): boolean {
  const siteGuard = ctx.site?.guard;
  if (siteGuard?.origin === undefined || countedForOrigin.has(ctx)) return true;
  countedForOrigin.add(ctx);
  const refusal = siteGuard.checkOrigin(judged(edge, ctx), ctx.req.headers, edge.now());
  if (refusal === undefined) return true;
  refuse(edge, ctx, refusal);
  return false;
}

/**
 * The address site security judges: the client's, which for a verified child tier is the one
 * the child forwarded (its own rules saw the same), behind trusted proxies the one the nearest
 * of them saw (client.ts), else the peer's.
 */
function judged(edge: Edge, ctx: RequestContext): string {
  return ctx.tierClient ?? realClient(edge, ctx);
}

function refuse(edge: Edge, ctx: RequestContext, refusal: Refusal): void {
  ctx.lookup = 'rejected';
  if (refusal.kind === 'rate') {
    noteSecurity(edge, ctx, refusal.bucket === 'origin' ? 'rate-origin' : 'rate-requests', 'refused');
    const limiter = refusal.limiter;
    const key = limiter.key(judged(edge, ctx), ctx.req.headers);
    const error =
      refusal.bucket === 'origin'
        ? new EdgeError(
            'EDGE_ERR_CLIENT_ORIGIN_RATE_LIMITED',
            'too many requests reaching the origin; retry later',
          )
        : new EdgeError('EDGE_ERR_CLIENT_RATE_LIMITED', 'too many requests; retry later');
    sendError(edge, ctx, error, false, limiter.fields(key, edge.now(), refusal.retryAfterMs));
    return;
  }
  noteSecurity(edge, ctx, refusal.rule, 'refused');
  if (refusal.kind === 'ambiguous') {
    sendError(edge, ctx, new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'ambiguous path refused'), false);
    return;
  }
  if (refusal.kind === 'forbidden') {
    sendError(edge, ctx, new EdgeError('EDGE_ERR_CLIENT_FORBIDDEN', FORBIDDEN_MESSAGES[refusal.rule]), false);
    return;
  }
  const [code, message] = LIMIT_ERRORS[refusal.rule];
  // An oversized header section or body is not read: the connection cannot be reused.
  sendError(edge, ctx, new EdgeError(code, message), refusal.rule !== 'url-length');
}
