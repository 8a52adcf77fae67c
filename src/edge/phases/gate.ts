/**
 * gate: runs first on every request the lookup could not answer from the cache. Decides how
 * it reaches the origin, before any collapsing:
 * - `refuse`: only-if-cached and nothing usable stored — answered 504 at once; an
 *   Accept-Encoding that nothing satisfies — 406;
 * - `pass`: fetched and relayed unstored (an unsafe method; a HEAD miss that is not converted:
 *   `cache.convertHead` off, or a request that could not share a fill);
 * - `forward`: fetched to be stored (or refreshed, or combined), perhaps collapsed with others.
 */
import { acceptsNothing } from '../../cache/policy/accept-encoding.ts';
import { onlyIfCached } from '../../cache/policy/reuse.ts';
import { EdgeError } from '../../errors.ts';
import type { CacheStatusParts } from '../../observability/cache-status.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { Found, LookupOutcome } from '../outcomes.ts';
import { type Combinable, combinable } from '../partials.ts';
import { clientDirectives } from '../rule-effects.ts';

export type Fwd = CacheStatusParts['fwd'];

export type Gate =
  | { kind: 'refuse'; error: EdgeError }
  | { kind: 'pass'; fwd: Fwd; detail?: string }
  | {
      kind: 'forward';
      fwd: Fwd;
      /** The stored response being revalidated (or served stale if the origin fails). */
      stored: Found | undefined;
      /** A Range miss: the origin is asked for the range, its 206 stored as a partial entry. */
      ranged: boolean;
      /** A stored partial entry this request completes. */
      partial: Combinable | undefined;
      /** Whether the request may wait for, or lead, a shared fetch of its key (a Range miss never). */
      collapsible: boolean;
    };

export function gate(edge: Edge, ctx: RequestContext, found: LookupOutcome, cameBack: boolean): Gate {
  if (found.kind === 'uncacheable-method')
    return ctx.passReason
      ? { kind: 'pass', fwd: 'bypass', detail: ctx.passReason }
      : { kind: 'pass', fwd: 'method' };
  const headers = ctx.req.headers;
  const directives = found.kind === 'found' ? found.directives : clientDirectives(ctx);
  // RFC 9211 §2.2: `fwd` says the request went toward the origin; these answers never did.
  if (onlyIfCached(directives)) {
    ctx.cacheStatus.detail = 'only-if-cached';
    return {
      kind: 'refuse',
      error: new EdgeError('EDGE_ERR_CLIENT_ONLY_IF_CACHED', 'not in cache (only-if-cached)'),
    };
  }
  // RFC 9110 §12.5.3: nothing at all is acceptable (identity excluded, no coding wanted).
  if (acceptsNothing(headers['accept-encoding'])) {
    ctx.cacheStatus.detail = 'not-acceptable';
    return {
      kind: 'refuse',
      error: new EdgeError('EDGE_ERR_CLIENT_NOT_ACCEPTABLE', 'no content coding is acceptable'),
    };
  }
  const shareable = mayShare(edge, ctx, cameBack);
  // A HEAD miss waits for a running fill of its key like any follower, and is answered from the
  // stored response. With none running it leads a fill with GET (cache.convertHead, as nginx's
  // proxy_cache_convert_head), its client answered the head alone; unless it could not share
  // that fill (Authorization, a key known uncacheable, a bypass, a fence: most likely a body
  // fetched for nothing), or the operator wants HEAD to reach the origin as HEAD. One that
  // could not share goes as HEAD whether a fill is running or not: it cannot wait for that fill.
  const filling = edge.collapse.pending(ctx.storage) !== undefined;
  const head = ctx.method === 'HEAD';
  const converted = shareable && (filling || edge.config.cache.convertHead);
  if (head && found.kind !== 'found' && !converted)
    return { kind: 'pass', fwd: found.reason === 'vary-miss' ? 'vary-miss' : 'miss', detail: 'head' };
  // RFC 9111 §3.3: a Range miss with no fill running is fetched as it is, its 206 stored as a
  // partial entry; such a fill is never shared (other requests want other bytes). RFC 9110
  // §14.2: a HEAD's Range is ignored (range handling is defined for GET only).
  const ranged = headers.range !== undefined && !head && found.kind !== 'found' && !filling;
  // RFC 9211 §2.2: `request` when the request's semantics kept a fresh response from use; a
  // stored response that itself says no-cache is validated as a stale one is (`stale`).
  const fwd: Fwd =
    found.kind === 'found'
      ? found.reuse.kind === 'revalidate' && !found.reuse.stale && !found.record.noCache
        ? 'request'
        : 'stale'
      : found.reason;
  // RFC 9111 §3.4: a Range reaching past a stored partial with a strong ETag asks only for the rest.
  const partial = ranged ? combinable(edge, ctx) : undefined;
  const collapsible = !ranged && shareable;
  const stored = found.kind === 'found' ? found : undefined;
  return { kind: 'forward', fwd, stored, ranged, partial, collapsible };
}

/**
 * Whether the request may wait for, or lead, a shared fetch of its key.
 * A request that came back to this node (a loop) never waits for a fill: the fill may be
 * its own first pass, waiting for it. It is refused in fetch.
 * A request carrying unkeyed values an origin may reflect still leads: its response is scanned
 * before it may be stored, and followers wait for that commit instead of reading the stream
 * (collapse.ts), so a request sent after its response ended finds what it stored.
 * A bypass (a site rule) asks the origin itself, as nginx's proxy_cache_bypass: it waits for no fill.
 * So does a child's request fenced by a purge not applied here: a running fill may predate it.
 */
function mayShare(edge: Edge, ctx: RequestContext, cameBack: boolean): boolean {
  return (
    ctx.req.headers.authorization === undefined &&
    !edge.collapse.isHitForPass(ctx.storage) &&
    !cameBack &&
    ctx.rules?.action !== 'bypass' &&
    ctx.fence === undefined
  );
}
