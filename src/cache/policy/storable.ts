/**
 * Whether a response may be stored by a shared cache (RFC 9111 §3), with the
 * reason when it may not. The baseline verdict comes from http-cache-semantics;
 * this wrapper corrects what it gets wrong for a shared edge cache (see semantics.ts).
 */
import { type Directives, parseCacheControl, parseTargetedField } from './cache-control.ts';
import { HEURISTICALLY_CACHEABLE, hasExplicitExpiration } from './freshness.ts';
import type { RuleTtl } from './overrides.ts';
import { storablePartial } from './partial.ts';
import { baselineStorable, type HeaderMap } from './semantics.ts';
import { parseSurrogateControl } from './surrogate-control.ts';
import { parseVary } from './vary.ts';

/** Statuses whose caching requirements the cache implements (for must-understand, §5.2.2.3). */
export const UNDERSTOOD_STATUSES: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
]);

/** Request fields the node writes from the client's address before the origin sees them. */
const CLIENT_ADDRESS_FIELDS: ReadonlySet<string> = new Set(['x-forwarded-for', 'forwarded']);

export type NotStorableReason =
  | 'method'
  | 'request-no-store'
  | 'status'
  | 'error-status'
  | 'partial-content'
  | 'must-understand'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'set-cookie'
  | 'vary-star'
  /** Vary names a field the node writes from the client's address (X-Forwarded-For, Forwarded). */
  | 'vary-client'
  | 'no-freshness'
  | 'not-storable'
  | 'too-large'
  /** A site rule gives this status a TTL of 0 (statusTtl {5xx: 0}) and the origin gave none. */
  | 'rule-ttl-zero';

export interface CacheDirectives {
  /** The directives in force for this cache. */
  directives: Directives;
  /** Where they came from (RFC 9213 targeted fields win over Cache-Control). */
  targeted: boolean;
}

/**
 * RFC 9213 §2.1: a cache "MUST select the first (in target list order) field with a
 * valid, non-empty value ... and it MUST ignore the Cache-Control and Expires header
 * fields in that response". Our target list: Strata-CDN-Cache-Control, CDN-Cache-Control,
 * Surrogate-Control (W3C Edge Architecture; `name` is the device token that targets us).
 */
export function responseDirectives(headers: HeaderMap, name: string): CacheDirectives {
  const own = parseTargetedField(headers['strata-cdn-cache-control']);
  if (own) return { directives: own, targeted: true };
  const cdn = parseTargetedField(headers['cdn-cache-control']);
  if (cdn) return { directives: cdn, targeted: true };
  const surrogate = parseSurrogateControl(headers['surrogate-control'], name);
  if (surrogate) return { directives: surrogate, targeted: true };
  return { directives: parseCacheControl(headers['cache-control']), targeted: false };
}

export interface StorableInput {
  method: string;
  requestHeaders: HeaderMap;
  status: number;
  responseHeaders: HeaderMap;
  response: CacheDirectives;
  /** Whether a server error (5xx) may be stored at all (`cache.maxErrorTtl` > 0). */
  serverErrors: boolean;
  /**
   * The lifetime the site's rules give this response when the origin gives none (overrides.ts):
   * it stands in for explicit freshness, and a status its statusTtl names may be stored.
   */
  rule?: RuleTtl | undefined;
}

export type StorableVerdict =
  | {
      storable: true;
      /** Header fields a shared cache must not store (§5.2.2.7 private="…", §5.2.2.4 no-cache="…"). */
      stripFields: string[];
      /** Unqualified no-cache: every reuse must be validated (§5.2.2.4). */
      noCache: boolean;
    }
  | { storable: false; reason: NotStorableReason };

function qualifiedFields(directives: Directives, name: string): string[] | undefined {
  const argument = directives.get(name);
  if (argument === undefined || argument === '') return undefined;
  return argument
    .split(',')
    .map((field) => field.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * An error answers one moment of the origin, or one client's request: stored, it would answer
 * everyone (a 400 with max-age=60 provoked by one bad request is a cache-poisoned denial of
 * service). RFC 9111 §3 would let a shared cache store any final status with explicit
 * freshness; this cache stores a client error (4xx) only when cacheable by default (RFC 9110
 * §15.1: 404, 405, 410, 414), and a server error (5xx) only when allowed at all — its lifetime
 * is then capped (freshness.ts).
 */
function errorStorable(status: number, serverErrors: boolean): boolean {
  if (status >= 500) return serverErrors;
  return status < 400 || HEURISTICALLY_CACHEABLE.has(status);
}

export function decideStorable(input: StorableInput): StorableVerdict {
  const { directives: cc, targeted } = input.response;
  const requestCc = parseCacheControl(input.requestHeaders['cache-control']);
  // §3: "the request method is understood by the cache" — GET; HEAD is answered from a stored GET.
  if (input.method !== 'GET') return { storable: false, reason: 'method' };
  // §5.2.1.5: no-store in a request: "a cache MUST NOT store any part of either this request or any response to it".
  if (requestCc.has('no-store')) return { storable: false, reason: 'request-no-store' };
  // §3: "the response status code is final"; 206 and 304 need the cache to understand them.
  if (input.status < 200 || input.status === 304) return { storable: false, reason: 'status' };
  // §3.3: a 206 may be stored as an incomplete response when it is one trustworthy part;
  // a 416 answers the request's Range, not the target, and is never stored.
  if (input.status === 206 && storablePartial(input.responseHeaders) === undefined)
    return { storable: false, reason: 'partial-content' };
  if (input.status === 416) return { storable: false, reason: 'partial-content' };
  const named = input.rule?.named === true && input.rule.ttl > 0;
  if (!errorStorable(input.status, input.serverErrors) && !named)
    return { storable: false, reason: 'error-status' };
  // §5.2.2.3: must-understand limits caching to caches that understand the status; they ignore no-store.
  const mustUnderstand = cc.has('must-understand');
  if (mustUnderstand && !UNDERSTOOD_STATUSES.has(input.status))
    return { storable: false, reason: 'must-understand' };
  if (cc.has('no-store') && !mustUnderstand) return { storable: false, reason: 'no-store' };
  const privateFields = qualifiedFields(cc, 'private');
  if (cc.has('private') && privateFields === undefined) return { storable: false, reason: 'private' };
  // §3.5: with Authorization, only public, s-maxage or must-revalidate allow a shared cache to store.
  if (
    input.requestHeaders.authorization !== undefined &&
    !cc.has('public') &&
    !cc.has('s-maxage') &&
    !cc.has('must-revalidate')
  ) {
    return { storable: false, reason: 'authorization' };
  }
  const noCacheFields = qualifiedFields(cc, 'no-cache');
  const stripFields = [...(privateFields ?? []), ...(noCacheFields ?? [])];
  // One user's cookie must never reach another: a Set-Cookie response is stored only
  // when the origin says the field itself must not be reused.
  if (input.responseHeaders['set-cookie'] !== undefined && !stripFields.includes('set-cookie')) {
    return { storable: false, reason: 'set-cookie' };
  }
  const vary = parseVary(input.responseHeaders.vary);
  if (vary === '*') return { storable: false, reason: 'vary-star' };
  // The origin saw the X-Forwarded-For and Forwarded the node wrote from this client's address,
  // not the client's own (a variant is selected by the latter): one visitor's page would be
  // every visitor's. Such a response is made per client; it is not stored.
  if (vary.some((name) => CLIENT_ADDRESS_FIELDS.has(name))) return { storable: false, reason: 'vary-client' };
  const explicit = hasExplicitExpiration(cc, targeted, input.responseHeaders.expires);
  // An operator's TTL where the origin gave none: 0 says not to store, more stands in for freshness.
  if (!explicit && input.rule !== undefined) {
    if (input.rule.ttl <= 0) return { storable: false, reason: 'rule-ttl-zero' };
    return { storable: true, stripFields, noCache: cc.has('no-cache') && noCacheFields === undefined };
  }
  if (!explicit && !cc.has('public') && !HEURISTICALLY_CACHEABLE.has(input.status)) {
    return { storable: false, reason: 'no-freshness' };
  }
  // The baseline only knows the statuses it understands (fault 7: §3 lets a shared cache
  // store any final status with explicit freshness), so it is asked only about those.
  if (UNDERSTOOD_STATUSES.has(input.status) && !baselineStorable(input, mustUnderstand)) {
    return { storable: false, reason: 'not-storable' };
  }
  return { storable: true, stripFields, noCache: cc.has('no-cache') && noCacheFields === undefined };
}
