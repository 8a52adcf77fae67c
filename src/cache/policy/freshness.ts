/**
 * Freshness of a response when it is stored (RFC 9111 §4.2, RFC 9213, RFC 5861),
 * flattened into numbers a hit can compare without parsing anything.
 */
import { type Directives, deltaSeconds, invalidDeltaSeconds } from './cache-control.ts';
import { parseExpires, parseHttpDate } from './http-date.ts';

/** RFC 9110 §15.1: statuses that are heuristically cacheable. */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([
  200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501,
]);

export type FreshnessSource = 'cdn-cache-control' | 's-maxage' | 'max-age' | 'expires' | 'heuristic' | 'none';

export interface FreshnessInput {
  status: number;
  /** The directives in force: the targeted field's when one applies, else Cache-Control's. */
  directives: Directives;
  /** True when the directives came from a targeted field (RFC 9213): Expires is then ignored. */
  targeted: boolean;
  date: string | undefined;
  expires: string | undefined;
  lastModified: string | undefined;
  /** When the response was received (ms). */
  responseTime: number;
  heuristicFraction: number;
  heuristicMaxMs: number;
  /** The request carried Cookie or Authorization: the response may be personal. */
  credentials: boolean;
  /** Longest lifetime of a 5xx response, in seconds (`cache.maxErrorTtl`). */
  maxErrorLifetime: number;
}

export interface Freshness {
  /** Freshness lifetime in seconds. */
  lifetime: number;
  source: FreshnessSource;
}

/**
 * RFC 9111 §4.2.1: the first match of s-maxage, max-age, Expires; else a heuristic (§4.2.2).
 * A server error (5xx) is fresh at most `maxErrorLifetime`: an origin's passing failure
 * must not be answered from the cache for long (a cache-poisoned denial of service).
 */
export function freshnessLifetime(input: FreshnessInput): Freshness {
  const freshness = originLifetime(input);
  if (input.status >= 500 && freshness.lifetime > input.maxErrorLifetime)
    return { lifetime: input.maxErrorLifetime, source: freshness.source };
  return freshness;
}

/** A lifetime the origin gave (as opposed to a heuristic, or none). */
export function isExplicit(source: FreshnessSource): boolean {
  return source !== 'heuristic' && source !== 'none';
}

function originLifetime(input: FreshnessInput): Freshness {
  const cc = input.directives;
  // A present but invalid freshness directive makes the response stale (§4.2.1, §1.2.2).
  if (invalidDeltaSeconds(cc, 's-maxage')) return { lifetime: 0, source: 's-maxage' };
  const sMaxAge = deltaSeconds(cc, 's-maxage');
  if (sMaxAge !== undefined)
    return { lifetime: sMaxAge, source: input.targeted ? 'cdn-cache-control' : 's-maxage' };
  if (invalidDeltaSeconds(cc, 'max-age')) return { lifetime: 0, source: 'max-age' };
  const maxAge = deltaSeconds(cc, 'max-age');
  if (maxAge !== undefined)
    return { lifetime: maxAge, source: input.targeted ? 'cdn-cache-control' : 'max-age' };
  if (!input.targeted && input.expires !== undefined) {
    // §5.3: "A cache recipient MUST interpret invalid date formats, especially the value "0",
    // as representing a time in the past (i.e., "already expired")." Letter case is not
    // held against it (see parseExpires).
    const expires = parseExpires(input.expires);
    if (expires === undefined) return { lifetime: 0, source: 'expires' };
    const date = parseHttpDate(input.date) ?? input.responseTime;
    return { lifetime: Math.max(0, Math.floor((expires - date) / 1000)), source: 'expires' };
  }
  // §4.2.2: heuristics only for heuristically cacheable statuses, or responses marked public.
  if (!HEURISTICALLY_CACHEABLE.has(input.status) && !cc.has('public')) return { lifetime: 0, source: 'none' };
  // §4.2.2 lets a cache guess only "if the response has no explicit expiration time"; a
  // response to a request with credentials may be personal whatever its URL looks like
  // (web cache deception: /account/page.css), so no guess is made for it.
  if (input.credentials) return { lifetime: 0, source: 'none' };
  const lastModified = parseHttpDate(input.lastModified);
  if (lastModified === undefined) return { lifetime: 0, source: 'none' };
  const date = parseHttpDate(input.date) ?? input.responseTime;
  const since = Math.max(0, date - lastModified);
  const heuristic = Math.min(since * input.heuristicFraction, input.heuristicMaxMs);
  return { lifetime: Math.floor(heuristic / 1000), source: 'heuristic' };
}

/** True when the response carries an explicit expiration time. */
export function hasExplicitExpiration(
  directives: Directives,
  targeted: boolean,
  expires: string | undefined,
): boolean {
  return directives.has('s-maxage') || directives.has('max-age') || (!targeted && expires !== undefined);
}

/**
 * RFC 9111 §4.2.3: corrected_initial_age, in seconds.
 *   apparent_age = max(0, response_time - date_value);
 *   response_delay = response_time - request_time;
 *   corrected_age_value = age_value + response_delay;
 *   corrected_initial_age = max(apparent_age, corrected_age_value);
 */
export function correctedInitialAge(
  ageHeader: string | undefined,
  dateHeader: string | undefined,
  requestTime: number,
  responseTime: number,
): number {
  const date = parseHttpDate(dateHeader);
  const apparentAge = date === undefined ? 0 : Math.max(0, (responseTime - date) / 1000);
  const ageValue = parseAge(ageHeader);
  const responseDelay = Math.max(0, (responseTime - requestTime) / 1000);
  return Math.floor(Math.max(apparentAge, ageValue + responseDelay));
}

/**
 * RFC 9111 §1.2.2: the largest age a cache records; a larger delta-seconds is clamped to it,
 * which is far beyond any freshness lifetime (the response is stale).
 */
export const AGE_MAX = 2147483648;

/**
 * RFC 9111 §5.1: `Age = delta-seconds`, a singleton field, read as the current edition of the
 * HTTP cache test suite settles it:
 * - the first value is used when a list arrives, on one line (`0, 7200`) or over several
 *   (joined with ", " before this is called): `0, 7200` is 0, `7200, 0` is 7200;
 * - a value that is not a non-negative integer (`abc`, `-7200`, `7200.0`, `7200;foo=bar`, an
 *   empty member) is ignored as if the field were absent: "a recipient MUST ignore" an invalid
 *   singleton value rather than guess at it; the response's age is then its apparent age and
 *   the time it spent in transit (§4.2.3), as for a response without Age;
 * - a value of 2147483648 or more is clamped to 2147483648 (§1.2.2), i.e. stale.
 */
export function parseAge(value: string | undefined): number {
  if (value === undefined) return 0;
  const comma = value.indexOf(',');
  const first = (comma === -1 ? value : value.slice(0, comma)).trim();
  if (!/^\d+$/.test(first)) return 0;
  return Math.min(Number(first), AGE_MAX);
}

/** RFC 5861 windows, in seconds (0 when absent or invalid). */
export function staleWindows(directives: Directives): { swr: number; sie: number } {
  return {
    swr: deltaSeconds(directives, 'stale-while-revalidate') ?? 0,
    sie: deltaSeconds(directives, 'stale-if-error') ?? 0,
  };
}
