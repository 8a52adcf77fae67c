/**
 * The freshness part of a stored record, flattened from a response's header fields when it is
 * stored and again when a 304 refreshes it (RFC 9111 §4.2, §4.3.4; RFC 5861; RFC 9213). Pure:
 * the times are passed in, in milliseconds.
 */
import type { FreshnessSource } from './freshness.ts';
import { correctedInitialAge, freshnessLifetime, isExplicit, staleWindows } from './freshness.ts';
import { type CacheOverrides, ruledLifetime } from './overrides.ts';
import type { HeaderMap } from './semantics.ts';
import type { CacheDirectives } from './storable.ts';

export interface StoredFreshnessInput {
  status: number;
  headers: HeaderMap;
  /** The directives in force for this cache (`responseDirectives`). */
  cache: CacheDirectives;
  /** When the request was sent and the response received (ms). */
  requestTime: number;
  responseTime: number;
  heuristicFraction: number;
  heuristicMaxMs: number;
  /** The request carried Cookie or Authorization. */
  credentials: boolean;
  /** Longest lifetime of a 5xx response, in seconds. */
  maxErrorLifetime: number;
  /** The site's grace, in seconds: a stale window for responses with freshness the origin gave. */
  grace: number;
  /** The site's cache rules for this request (TTLs, clamps, stale windows), if any. */
  overrides?: CacheOverrides | undefined;
}

export interface StoredFreshnessFields {
  lifetime: number;
  source: FreshnessSource | 'rule';
  responseTime: number;
  initialAge: number;
  swr: number;
  sie: number;
  noStale: boolean;
  noCache: boolean;
  invalidated: boolean;
  authOk: boolean;
  etag: string | undefined;
  lastModified: string | undefined;
  contentEncoding: string | undefined;
}

/**
 * The record's freshness fields:
 * - lifetime: RFC 9111 §4.2.1 "the first match of s-maxage, max-age, Expires", else §4.2.2's
 *   heuristic; initialAge: §4.2.3 corrected_initial_age.
 * - swr / sie: RFC 5861 §3 "stale-while-revalidate ... indicates that caches MAY serve the
 *   response in which it appears after it becomes stale, up to the indicated number of
 *   seconds"; §4 the same for stale-if-error. A site's grace stands in for an absent
 *   stale-while-revalidate, and only for freshness the origin gave.
 * - noStale: RFC 9111 §5.2.2.2 must-revalidate "the cache MUST NOT use the response to satisfy
 *   subsequent requests without successful validation on the origin server" once stale
 *   (§5.2.2.8 proxy-revalidate, §5.2.2.10 s-maxage "incorporates the semantics of the
 *   proxy-revalidate"); also a response without freshness from the origin, and a server error.
 * - noCache: §5.2.2.4 no-cache without field names: "MUST NOT be used to satisfy any other
 *   request without forwarding it for validation".
 * - authOk: §3.5 a response to a request with Authorization may be reused only with public,
 *   s-maxage or must-revalidate.
 */
export function storedFreshness(input: StoredFreshnessInput): StoredFreshnessFields {
  const { headers, status } = input;
  const d = input.cache.directives;
  const origin = freshnessLifetime({
    status,
    directives: d,
    targeted: input.cache.targeted,
    date: headers.date,
    expires: headers.expires,
    lastModified: headers['last-modified'],
    responseTime: input.responseTime,
    heuristicFraction: input.heuristicFraction,
    heuristicMaxMs: input.heuristicMaxMs,
    credentials: input.credentials,
    maxErrorLifetime: input.maxErrorLifetime,
  });
  const overrides = input.overrides;
  // The site's rules: their TTL where the origin gave none, their clamps (overrides.ts).
  const ruled = overrides && ruledLifetime(overrides, status, origin.lifetime, isExplicit(origin.source));
  const freshness: { lifetime: number; source: FreshnessSource | 'rule' } = ruled?.ruled
    ? { lifetime: ruled.lifetime, source: 'rule' }
    : origin;
  const windows = staleWindows(d);
  const hasStaleDirective = d.has('stale-while-revalidate') || d.has('stale-if-error');
  // Never reused without validation: a response with no freshness the origin gave (it may be
  // one user's page: no max-stale, grace or stale-if-error hands it to another), and a
  // server error (its short capped lifetime is all it gets).
  const explicit = freshness.source === 'rule' || isExplicit(freshness.source);
  const neverStale = (!explicit && freshness.lifetime <= 0) || status >= 500;
  // A site's grace extends freshness the origin gave; it gives none to what had none.
  const grace = freshness.lifetime > 0 ? input.grace : 0;
  return {
    lifetime: freshness.lifetime,
    source: freshness.source,
    responseTime: input.responseTime,
    initialAge: correctedInitialAge(headers.age, headers.date, input.requestTime, input.responseTime),
    swr: neverStale ? 0 : hasStaleDirective ? windows.swr : (overrides?.swr ?? grace),
    sie: neverStale ? 0 : hasStaleDirective ? windows.sie : (overrides?.sie ?? windows.sie),
    noStale: neverStale || d.has('must-revalidate') || d.has('proxy-revalidate') || d.has('s-maxage'),
    noCache: d.has('no-cache') && (d.get('no-cache') ?? '') === '',
    invalidated: false,
    authOk: d.has('public') || d.has('s-maxage') || d.has('must-revalidate'),
    etag: headers.etag,
    lastModified: headers['last-modified'],
    contentEncoding: headers['content-encoding'],
  };
}
