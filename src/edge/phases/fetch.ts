/**
 * fetch: builds the origin request from the client request (end-to-end fields only,
 * forwarding fields set, unkeyed claims of untrusted peers dropped, Via and CDN-Loop
 * appended) and sends it through the site's pool, which sets each origin's Host. A request
 * that looped back here, or that carries the admin token, is refused instead. Runs after
 * collapse for a leader, for a pass, and in a background revalidation; `fetchStep` returns
 * the response or why there is none.
 */
import type { Readable } from 'node:stream';
import { negotiateEncoding } from '../../cache/policy/accept-encoding.ts';
import type { EntryRecord } from '../../cache/record.ts';
import { EdgeError } from '../../errors.ts';
import { tokenMatches } from '../../http/bearer.ts';
import {
  appendCdnLoop,
  appendVia,
  dropUnkeyedClaims,
  endToEndRequestHeaders,
  FORWARDING_CLAIMS,
  forwardingHeaders,
  loopPasses,
  REQUEST_REWRITES,
} from '../../http/headers.ts';
import { hasRequestBody, requestBody } from '../../http/request-body.ts';
import { TIER_HEADER } from '../../http/tier-auth.ts';
import type { OriginResponse } from '../../origin/pool.ts';
import { FENCE_HEADER } from '../../purge/fence.ts';
import { decodeUnasked } from '../compression.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { discard as discardBody } from '../fill-driver.ts';
import { forwardInterim, replayHints } from '../interim.ts';
import type { Fetched } from '../outcomes.ts';
import { rewriteRequest } from '../rule-effects.ts';
import { noteSecurity } from '../security-note.ts';
import { CLIENT_HEADER, tierFieldsFor } from '../tier.ts';

/** Client conditionals and ranges are not forwarded when the node fetches a full response to store. */
const CACHE_FILL_DROP: ReadonlySet<string> = new Set([
  'expect',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
]);
/** Filling a partial entry: the client's Range (and If-Range) go to the origin, its validators do not. */
const RANGE_FILL_DROP: ReadonlySet<string> = new Set([
  'expect',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
]);
/**
 * RFC 9110 §10.1.1: Expect is answered at the edge (100 Continue once the request is accepted),
 * and the body it announced is forwarded as it arrives; the origin is never asked to expect.
 */
const PASS_DROP: ReadonlySet<string> = new Set(['expect']);

/**
 * Everything an origin request goes without, by kind of request and peer: the kind's own fields,
 * this node's tier headers (a verified child's stop here), and the unkeyed claims this peer may
 * not send (dropUnkeyedClaims in http/headers.ts). Made once each; the request's fields are then
 * copied once, with no field deleted afterwards.
 */
const DROPS = new Map<ReadonlySet<string>, (ReadonlySet<string> | undefined)[]>();

function dropsFor(base: ReadonlySet<string>, trusted: boolean, fill: boolean): ReadonlySet<string> {
  let made = DROPS.get(base);
  if (made === undefined) {
    made = [undefined, undefined, undefined, undefined];
    DROPS.set(base, made);
  }
  const slot = (trusted ? 2 : 0) + (fill ? 1 : 0);
  let drops = made[slot];
  if (drops === undefined) {
    const unkeyed = [...FORWARDING_CLAIMS, ...REQUEST_REWRITES].filter((name) => {
      const fields: Record<string, string> = { [name]: '' };
      dropUnkeyedClaims(fields, trusted, fill);
      return !(name in fields);
    });
    drops = new Set([...base, TIER_HEADER, FENCE_HEADER, CLIENT_HEADER, ...unkeyed]);
    made[slot] = drops;
  }
  return drops;
}

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '7xx', '8xx', '9xx'];

/** An origin status's class as the origin-request counter names it (2xx, 5xx, ...), built once. */
function statusClass(status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
}

export interface FetchOptions {
  /** Fetching a full response to store: the client's conditionals are answered by the node. */
  fill: boolean;
  /** The stored entry to validate (adds If-None-Match / If-Modified-Since). */
  validate?: EntryRecord | undefined;
  /** With fill: ask for the client's Range, to store the 206 as a partial entry. */
  range?: boolean;
  /** With fill and range: the Range and If-Range to send instead of the client's (RFC 9111 §3.4). */
  combine?: { range: string; ifRange: string } | undefined;
  /**
   * A background revalidation: no client waits on it, so the origin's interim (1xx) responses
   * are not forwarded and no stored hints replayed. Otherwise (a leader, a pass) they go to the
   * client (edge/interim.ts).
   */
  background?: boolean;
  /** Send GET for a HEAD request (to store the response). */
  method?: string;
  signal?: AbortSignal;
}

export function originRequestHeaders(
  edge: Edge,
  ctx: RequestContext,
  options: FetchOptions,
): Record<string, string | string[]> {
  const { req } = ctx;
  const peer = ctx.clientAddress;
  // A verified child tier is trusted like a configured proxy (docs/tiers.md); its header stops here.
  const trusted = ctx.tierChild !== undefined || edge.trusted(peer);
  const drops = options.fill
    ? dropsFor(options.range ? RANGE_FILL_DROP : CACHE_FILL_DROP, trusted, true)
    : dropsFor(PASS_DROP, trusted, false);
  const headers = endToEndRequestHeaders(req.headers, drops);
  Object.assign(
    headers,
    forwardingHeaders({
      clientAddress: peer,
      trusted,
      proto: ctx.scheme,
      host: ctx.host,
      headers: req.headers,
    }),
  );
  headers.via = appendVia(req.headers.via, ctx.protocol, edge.name);
  headers['x-request-id'] = ctx.requestId;
  headers['cdn-loop'] = appendCdnLoop(req.headers['cdn-loop'], edge.name, edge.loopId);
  headers['surrogate-capability'] = surrogateCapability(req.headers['surrogate-capability'], edge.name);
  // Host is set by the pool for each origin it tries (origins[].hostHeader, else ctx.host).
  if (options.fill) forwardEncodingBucket(headers, req.headers['accept-encoding']);
  if (options.combine) {
    headers.range = options.combine.range;
    headers['if-range'] = options.combine.ifRange;
  }
  if (options.validate) {
    // A coding the node made stands for the origin's representation: ask with the origin's tag.
    const etag = options.validate.originEtag ?? options.validate.etag;
    if (etag !== undefined) headers['if-none-match'] = etag;
    if (options.validate.lastModified !== undefined)
      headers['if-modified-since'] = options.validate.lastModified;
  }
  rewriteRequest(headers, ctx.rules?.request);
  return headers;
}

/**
 * A fill asks the origin for the request's Accept-Encoding bucket only (RFC 9110 §12.5.3): the
 * bucket is the variant key, so the stored answer must suit every request in it — a client
 * sending `gzip, br` and one sending `br;q=0.5, gzip` must not share a body the origin chose
 * for only one of them. A field no bucket satisfies is forwarded as it came (its own variant).
 */
export function forwardEncodingBucket(
  headers: Record<string, string | string[]>,
  value: string | string[] | undefined,
): void {
  const bucket = negotiateEncoding(value);
  if (bucket !== null) headers['accept-encoding'] = bucket;
}

/**
 * W3C Edge Architecture §2.1: every surrogate on the way appends its device token and what
 * it can do, so the origin can target Surrogate-Control directives at it (`;name`).
 */
export function surrogateCapability(existing: string | string[] | undefined, name: string): string {
  const entry = `${name}="Surrogate/1.0"`;
  if (existing === undefined || existing.length === 0) return entry;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${entry}`;
}

/**
 * Whether the request already passed through this very node (its CDN-Loop entry names our
 * node id): it must neither reach an origin nor wait for a fill, which may be its own first pass.
 */
export function cameBack(edge: Edge, ctx: RequestContext): boolean {
  return loopPasses(ctx.req.headers, edge.name, edge.loopId).own;
}

/** Why this request must not reach an origin at all, if it must not. */
export function refusal(edge: Edge, ctx: RequestContext): EdgeError | undefined {
  const headers = ctx.req.headers;
  // RFC 8586 §2: our own entry in CDN-Loop means a loop. Nodes of our name (tiers sharing the
  // default name, or entries whose node id an intermediary dropped) count up to tiers.maxHops.
  const passes = loopPasses(headers, edge.name, edge.loopId);
  if (passes.own || passes.named >= edge.config.tiers.maxHops) {
    return new EdgeError(
      'EDGE_ERR_ORIGIN_LOOP',
      'loop detected: this request already passed through this node',
    );
  }
  // The admin token belongs to the admin listener; a client port never hands it to an origin.
  const authorization = headers.authorization;
  if (authorization !== undefined && tokenMatches(edge.config.admin.token, authorization)) {
    return new EdgeError('EDGE_ERR_CLIENT_ADMIN_TOKEN', 'the admin token is not accepted on this port');
  }
  return undefined;
}

/**
 * Sends the origin request, unless it must not reach an origin at all (`refusal`). A request
 * body is bounded in time first (see request-body.ts): a small one is received whole before an
 * origin connection is taken, a large one streams with an idle timeout; a client that pauses
 * too long is answered 408 and the origin request aborted. Without a body, the pool's promise
 * is returned as it is (no async frame of its own on every miss and pass).
 */
export function fetchOrigin(edge: Edge, ctx: RequestContext, options: FetchOptions): Promise<OriginResponse> {
  const refused = refusal(edge, ctx);
  if (refused !== undefined) {
    // RFC 9211 §2.2: a loop refused here never went toward the origin, so it says no `fwd`.
    if (refused.code === 'EDGE_ERR_ORIGIN_LOOP') ctx.cacheStatus.detail = 'loop';
    ctx.cacheStatus.fwd = undefined;
    return Promise.reject(refused);
  }
  const method = options.method ?? ctx.method;
  // A pass forwards the body it has (a fat GET included: guard keeps it away from the cache).
  const withBody = !options.fill && method === ctx.method && hasRequestBody(ctx.req);
  return withBody ? sendWithBody(edge, ctx, options, method) : send(edge, ctx, options, method, undefined);
}

async function sendWithBody(
  edge: Edge,
  ctx: RequestContext,
  options: FetchOptions,
  method: string,
): Promise<OriginResponse> {
  const body = await requestBody(ctx.req, {
    bufferLimit: edge.config.proxy.requestBodyBuffer,
    idleTimeout: edge.config.proxy.requestBodyTimeout,
    minRate: edge.config.proxy.requestBodyMinRate,
    maxBytes: ctx.site?.guard?.maxBodySize,
  });
  try {
    return await send(edge, ctx, options, method, body.stream);
  } catch (error) {
    if (body.timedOut()) throw new EdgeError('EDGE_ERR_CLIENT_BODY_TIMEOUT', 'request body too slow');
    if (body.tooLarge()) {
      // The site's limit acted (as guard's does on a Content-Length over it): its metric, count and log field.
      noteSecurity(edge, ctx, 'body-size', 'refused');
      throw new EdgeError('EDGE_ERR_CLIENT_BODY_TOO_LARGE', 'request body too large');
    }
    // The client went away before its body ended: not the origin's failure.
    if (!ctx.req.complete && ctx.req.destroyed) {
      throw new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'request body incomplete', { cause: error });
    }
    throw error;
  }
}

function send(
  edge: Edge,
  ctx: RequestContext,
  options: FetchOptions,
  method: string,
  body: Readable | undefined,
): Promise<OriginResponse> {
  return ctx.site!.pool.request({
    method,
    path: ctx.path,
    host: ctx.host,
    key: ctx.key,
    headers: originRequestHeaders(edge, ctx, options),
    tier: tierFieldsFor(edge, ctx, method),
    body,
    ...(options.background
      ? {}
      : { onInterim: (status, fields) => forwardInterim(ctx, status, fields, edge.stripResponse) }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

export type { Fetched };

/**
 * fetch (the step): runs after collapse for a leader, after the gate for a pass, and in a
 * background revalidation. Asks the origin and notes the answer in the context and metrics;
 * each failed attempt was already counted against its origin by the pool.
 */
export async function fetchStep(edge: Edge, ctx: RequestContext, options: FetchOptions): Promise<Fetched> {
  const requestTime = edge.now();
  // A stored page being validated or refetched: its Link hints while the origin is asked (opt-in per site).
  if (!options.background && options.validate !== undefined && ctx.site?.earlyHints)
    replayHints(ctx, options.validate);
  let response: OriginResponse;
  try {
    response = await fetchOrigin(edge, ctx, options);
  } catch (error) {
    return { kind: 'failed', error: error as EdgeError };
  }
  // A coding the fill did not ask for is decoded, so every client of the bucket can read it.
  if (options.fill) response = decodeUnasked(ctx, response);
  ctx.origin = response.origin;
  ctx.originStatus = response.status;
  ctx.originMs = response.ms;
  ctx.originAttempts = response.attempts;
  ctx.cacheStatus.fwdStatus = response.status;
  edge.metrics.originRequestsBy(response.origin, statusClass(response.status)).inc();
  edge.metrics.originLatency.labels(response.origin).observe(response.ms / 1000);
  // RFC 9110 §15.3.7: a 206 answers a Range request. A fill that asked for the whole response
  // (the client's Range dropped) cannot deliver nor store a piece as if it were the whole.
  if (options.fill && !options.range && response.status === 206) {
    discardBody(response.body);
    const error = new EdgeError(
      'EDGE_ERR_ORIGIN_PROTOCOL',
      'the origin answered 206 to a request for the whole response',
      { origin: response.origin },
    );
    return { kind: 'failed', error };
  }
  return { kind: 'response', response, requestTime, responseTime: edge.now() };
}
