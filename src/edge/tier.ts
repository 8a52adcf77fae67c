/**
 * Tiers (docs/tiers.md): what a node does differently when the client is a verified child
 * tier, and what it sends to a parent. Not a phase: called by receive, fetch and the delivery
 * paths. A client that is not a verified child sees none of this.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { remainingFreshness, type StoredFreshness } from '../cache/policy/reuse.ts';
import { signTier, TIER_HEADER, verifyTier } from '../http/tier-auth.ts';
import { REQUEST_ID_HEADER, requestIdFor } from '../observability/request-id.ts';
import { clientOf } from '../origin/geo.ts';
import { FENCE_HEADER, formatFence, mergeFence, parseFence } from '../purge/fence.ts';
import { realClient } from './client.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

/**
 * The client a node's own site security judged, sent with every request to a parent (beside the
 * Strata-Tier header) and read from a verified child only: behind the child's load balancer or
 * through a middle tier, the last X-Forwarded-For hop is the balancer or the edge, not the client.
 */
export const CLIENT_HEADER = 'strata-client';

/** A verified child tier's request id is kept as any trusted proxy's. */
const trustAll = (): boolean => true;
/**
 * Checks the request's Strata-Tier header (called by receive). A header that verifies makes
 * the client a child tier (its X-Request-Id is kept); one that does not is ignored, never an
 * error (fetch drops it).
 */
export function acceptTier(edge: Edge, ctx: RequestContext): void {
  const value = ctx.req.headers[TIER_HEADER];
  if (value === undefined) return;
  const { secret, maxSkew } = edge.config.tiers;
  const fence = ctx.req.headers[FENCE_HEADER];
  const signedFence = typeof fence === 'string' ? fence : undefined;
  const stated = ctx.req.headers[CLIENT_HEADER];
  const binding = {
    host: ctx.req.headers.host ?? ctx.host,
    client: typeof stated === 'string' ? stated : undefined,
  };
  const claim = verifyTier(value, secret, edge.now(), maxSkew, ctx.method, ctx.path, signedFence, binding);
  if (claim !== undefined) {
    ctx.tierChild = claim.id;
    // Strata-Client is read only where the signature covers it.
    ctx.tierClient =
      (claim.bound ? statedClient(ctx.req.headers) : undefined) ?? forwardedClient(ctx.req.headers);
    if (signedFence !== undefined) checkFence(edge, ctx, signedFence);
    // One id follows the request through every tier, as from a trusted proxy.
    const incoming = ctx.req.headers[REQUEST_ID_HEADER];
    if (incoming !== undefined && incoming !== ctx.requestId)
      ctx.requestId = requestIdFor(incoming, trustAll, ctx.clientAddress);
  } else warnUnverified(edge, ctx.clientAddress);
}

/** When each node last warned of a Strata-Tier header that did not verify, and how many since. */
const unverified = new WeakMap<Edge, { warnedAt: number; since: number }>();
const UNVERIFIED_WARN_MS = 60_000;

/**
 * A header that does not verify is ignored, never an error for the request; but a child with
 * another secret, a clock past maxSkew or a Host rewritten on the way loses its tier trust
 * (tag purges, Strata-CDN-Cache-Control, its clients' limits) without a sign: a warning, at
 * most one a minute (a forged header in a flood costs no more lines), with how many were ignored.
 */
function warnUnverified(edge: Edge, peer: string): void {
  const now = edge.now();
  let seen = unverified.get(edge);
  if (seen === undefined) {
    seen = { warnedAt: Number.NEGATIVE_INFINITY, since: 0 };
    unverified.set(edge, seen);
  }
  seen.since++;
  if (now - seen.warnedAt < UNVERIFIED_WARN_MS) return;
  edge.log.warn(
    { peer, ignored: seen.since },
    "Strata-Tier header ignored: it does not verify (another tiers.secret, clocks further apart than tiers.maxSkew, a Host rewritten between the tiers, or forged); the request is served as any client's",
  );
  seen.warnedAt = now;
  seen.since = 0;
}

/** The client a verified child says its own security judged (Strata-Client), when it is an address. */
function statedClient(headers: IncomingHttpHeaders): string | undefined {
  const value = headers[CLIENT_HEADER];
  if (typeof value !== 'string') return undefined;
  const client = value.trim();
  return isIP(client) !== 0 ? client : undefined;
}

/**
 * The client a verified child forwarded, when it sends no Strata-Client (an older version): the
 * last hop of its X-Forwarded-For or Forwarded chain (the one the child appended, read as the
 * access log reads a chain, trusting no hop), when it is an address.
 */
function forwardedClient(headers: IncomingHttpHeaders): string | undefined {
  const join = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);
  const client = clientOf(join(headers['x-forwarded-for']), join(headers.forwarded), () => false);
  return client !== undefined && isIP(client) !== 0 ? client : undefined;
}

/**
 * A verified child's fence: the purges it names that this node has not applied yet. Those make
 * the request a bypass (lookup, gate: neither the stored entry nor a running fill answers it;
 * its response is stored) and are passed on to this node's own parents.
 * A fence that does not parse is ignored (the signature covered it: a child of another version).
 */
function checkFence(edge: Edge, ctx: RequestContext, value: string): void {
  const claims = parseFence(value);
  if (claims === undefined || edge.fence === undefined) return;
  const unmet = edge.fence.unmet(claims);
  if (unmet.length === 0) return;
  ctx.fence = unmet;
  ctx.cacheStatus.detail = 'fence';
  edge.metrics.fenceBypasses.inc();
}

/** The fields a request to a parent carries (docs/tiers.md); Strata-Tier signs the others. */
export interface TierFields {
  tier: string;
  fence: string | undefined;
  client: string;
}

/** Makes a request's tier fields for the Host the pool sends it with (origins[].hostHeader may set it). */
export type TierSigner = (host: string) => TierFields;

/**
 * What a request to a parent carries (sent only to origins with `tier: parent`, made by the pool
 * once it knows the Host: nothing of it for a request to a real origin, no HMAC): the Strata-Fence,
 * the purges this node applied within `tiers.fenceWindow` that may cover the key, with the claims
 * of a child this node has not reached yet; the Strata-Client the parent's site security judges,
 * the client this node judged; and the Strata-Tier header that signs both with the Host.
 * Undefined without `tiers.secret`.
 */
export function tierFieldsFor(edge: Edge, ctx: RequestContext, method: string): TierSigner | undefined {
  const secret = edge.config.tiers.secret;
  if (secret === undefined) return undefined;
  return (host) => {
    const own = edge.fence?.claimsFor(ctx.storage) ?? [];
    const claims = ctx.fence === undefined ? own : mergeFence(ctx.fence, own);
    const fence = claims.length > 0 ? formatFence(claims) : undefined;
    const client = ctx.tierClient ?? realClient(edge, ctx);
    const tier = signTier(secret, edge.loopId, edge.now(), method, ctx.path, fence, { host, client });
    return { tier, fence, client };
  };
}

/** Whether a stored header list holds a field only child tiers may see. */
export function hasTierFields(edge: Edge, headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (edge.tierFields.has(headers[i]!.toLowerCase())) return true;
  return false;
}

/** The fields a client may not see of a response: tier fields pass to a verified child only. */
export function stripFor(edge: Edge, ctx: RequestContext): ReadonlySet<string> {
  return ctx.tierChild === undefined ? edge.stripResponse : edge.stripStored;
}

/** Stored header lists without their tier fields, made once per list (and per node's field set). */
const visibleLists = new WeakMap<ReadonlySet<string>, WeakMap<readonly string[], readonly string[]>>();

/**
 * A stored record's header list as this client may see it: tier fields removed unless the
 * client is a verified child. Not a copy: the same list on every hit of the record (a hit on an
 * entry with tag fields would otherwise filter every field per request); copy before extending.
 */
export function clientVisible(
  edge: Edge,
  ctx: RequestContext,
  headers: readonly string[],
): readonly string[] {
  if (ctx.tierChild !== undefined) return headers;
  let lists = visibleLists.get(edge.tierFields);
  if (lists === undefined) {
    lists = new WeakMap();
    visibleLists.set(edge.tierFields, lists);
  }
  let visible = lists.get(headers);
  if (visible === undefined) {
    visible = clientHeaders(edge, ctx, headers);
    lists.set(headers, visible);
  }
  return visible;
}

/**
 * A stored or shared header list as this client may see it: tier fields removed unless the
 * client is a verified child. A copy, ready to be extended.
 */
export function clientHeaders(edge: Edge, ctx: RequestContext, headers: readonly string[]): string[] {
  if (ctx.tierChild !== undefined) return headers.slice();
  const strip = edge.tierFields;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!strip.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/**
 * The Age sent for a stored response. To a child tier a stale response (served under
 * stale-while-revalidate, stale-if-error or max-stale, or soft-purged) goes out with an Age of
 * at least its freshness lifetime, so the child stores it as stale too (RFC 9111 §4.2: fresh
 * only while freshness_lifetime > current_age) and never hands it to its clients as fresh.
 */
export function tierAge(ctx: RequestContext, record: StoredFreshness, age: number): number {
  if (ctx.tierChild === undefined || remainingFreshness(record, ctx.now) > 0) return age;
  return Math.max(age, Math.ceil(record.lifetime));
}
