/**
 * May a stored response be reused for this request (RFC 9111 §4, §4.2.4, RFC 5861)?
 * This runs on every hit: it reads only numbers that were flattened into the stored
 * record when it was written, and parses the request's Cache-Control only when present.
 */
import { type Directives, deltaSeconds, parseCacheControl } from './cache-control.ts';

/** What a hit needs of a stored response to decide reuse: all precomputed at store time. */
export interface StoredFreshness {
  /** Seconds of freshness lifetime. */
  lifetime: number;
  /** When the response was received (ms). */
  responseTime: number;
  /** corrected_initial_age in seconds (§4.2.3). */
  initialAge: number;
  /** stale-while-revalidate window in seconds. */
  swr: number;
  /** stale-if-error window in seconds. */
  sie: number;
  /** must-revalidate, proxy-revalidate, or s-maxage: never served stale (§4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10). */
  noStale: boolean;
  /** Unqualified no-cache: validate before every reuse (§5.2.2.4). */
  noCache: boolean;
  /** Marked stale by a soft purge or by an unsafe method (§4.4). */
  invalidated: boolean;
  /** The age (seconds, as corrected_initial_age + resident time) it had when marked invalidated. */
  invalidatedAge?: number;
  /** Where the lifetime came from (freshness.ts `FreshnessSource`). */
  source?: string;
}

/**
 * No freshness the origin gave (no explicit lifetime, no heuristic one): such a response may be
 * one user's page and is never reused without validation. Records written since this rule carry
 * noStale as well; this also covers the ones written before it.
 */
function withoutFreshness(stored: StoredFreshness): boolean {
  return stored.lifetime <= 0 && (stored.source === 'none' || stored.source === 'heuristic');
}

/** §4.2.3: current_age = corrected_initial_age + resident_time, in whole seconds. */
export function currentAge(stored: StoredFreshness, now: number): number {
  // §1.2.2: an age past the greatest delta-seconds is sent as 2147483648.
  return Math.min(
    2147483648,
    Math.max(0, Math.floor(stored.initialAge + (now - stored.responseTime) / 1000)),
  );
}

/** Seconds of freshness left (negative: stale by that much). */
export function remainingFreshness(stored: StoredFreshness, now: number): number {
  const age = stored.initialAge + (now - stored.responseTime) / 1000;
  if (!stored.invalidated) return stored.lifetime - age;
  // Invalidated: stale from the moment it was marked (or its lifetime's end, if sooner), so a
  // stale-while-revalidate window after a soft purge is the window the origin gave. A record
  // marked without its age (written before invalidatedAge) is stale by its whole age.
  const at = stored.invalidatedAge;
  if (at === undefined) return -currentAge(stored, now) - 1;
  return Math.min(stored.lifetime - age, at - age, -0.001);
}

export type Reuse =
  /** Serve it. */
  | { kind: 'fresh' }
  /** Serve it stale, because the request's max-stale allows it (§5.2.1.2). */
  | { kind: 'stale-allowed' }
  /** Serve it stale and revalidate in the background (RFC 5861 §3). */
  | { kind: 'stale-while-revalidate' }
  /** Validate with the origin first; `stale` says whether it was stale (vs. a request or response directive). */
  | { kind: 'revalidate'; stale: boolean };

const FRESH: Reuse = { kind: 'fresh' };
const STALE_ALLOWED: Reuse = { kind: 'stale-allowed' };
const SWR: Reuse = { kind: 'stale-while-revalidate' };
const REVALIDATE_STALE: Reuse = { kind: 'revalidate', stale: true };
const REVALIDATE_FRESH: Reuse = { kind: 'revalidate', stale: false };

/** The request's cache directives, honoring Pragma only when Cache-Control is absent (§5.4). */
export function requestDirectives(
  cacheControl: string | undefined,
  pragma: string | undefined,
): Directives | undefined {
  if (cacheControl !== undefined) return parseCacheControl(cacheControl);
  if (pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)) return new Map([['no-cache', '']]);
  return undefined;
}

/**
 * RFC 9111 §5.2.1.7: "The only-if-cached request directive indicates that the client only
 * wishes to obtain a stored response. Caches that honor this request directive SHOULD, upon
 * receiving it, respond with either a stored response consistent with the other constraints
 * of the request or a 504 (Gateway Timeout) status code."
 */
export function onlyIfCached(request: Directives | undefined): boolean {
  return request?.has('only-if-cached') ?? false;
}

export function decideReuse(stored: StoredFreshness, request: Directives | undefined, now: number): Reuse {
  const remaining = remainingFreshness(stored, now);
  if (request === undefined) {
    if (stored.noCache) return REVALIDATE_FRESH;
    if (remaining > 0) return FRESH;
    return staleReuse(stored, remaining, undefined);
  }
  // §5.2.1.4: no-cache — "a cache MUST NOT use a stored response to satisfy the request
  // without successful validation on the origin server".
  if (stored.noCache || request.has('no-cache')) return REVALIDATE_FRESH;
  const age = stored.initialAge + (now - stored.responseTime) / 1000;
  // §5.2.1.1: max-age — "the client prefers a response whose age is less than or equal to the specified number of seconds".
  const maxAge = deltaSeconds(request, 'max-age');
  if (maxAge !== undefined && age > maxAge) return remaining > 0 ? REVALIDATE_FRESH : REVALIDATE_STALE;
  // §5.2.1.3: min-fresh — "a response that will still be fresh for at least the specified number of seconds".
  const minFresh = deltaSeconds(request, 'min-fresh');
  if (minFresh !== undefined && remaining < minFresh)
    return remaining > 0 ? REVALIDATE_FRESH : REVALIDATE_STALE;
  if (remaining > 0) return FRESH;
  return staleReuse(stored, remaining, request);
}

function staleReuse(stored: StoredFreshness, remaining: number, request: Directives | undefined): Reuse {
  // §4.2.4: "A cache MUST NOT generate a stale response if it is prohibited by an explicit
  // in-protocol directive (e.g., by a no-cache response directive, a must-revalidate
  // response directive, or an applicable s-maxage or proxy-revalidate response directive)".
  if (stored.noStale || withoutFreshness(stored)) return REVALIDATE_STALE;
  const staleness = -remaining;
  if (request?.has('max-stale')) {
    // §5.2.1.2: "If no value is assigned to max-stale, then the client will accept a stale response of any age."
    const limit = deltaSeconds(request, 'max-stale');
    if (limit === undefined || staleness <= limit) return STALE_ALLOWED;
  }
  // A window of 0 is no window: a response whose lifetime has just run out is stale.
  if (stored.swr > 0 && staleness <= stored.swr) return SWR;
  return REVALIDATE_STALE;
}

/** RFC 5861 §4: may the stored response answer in place of an origin error? */
export function withinStaleIfError(
  stored: StoredFreshness,
  request: Directives | undefined,
  now: number,
): boolean {
  if (stored.noStale || withoutFreshness(stored)) return false;
  const staleness = -remainingFreshness(stored, now);
  const requestWindow = request ? deltaSeconds(request, 'stale-if-error') : undefined;
  const window = Math.max(stored.sie, requestWindow ?? 0);
  const within = window > 0 && staleness <= window;
  // §5.2.2.4, §5.2.1.4: no-cache (the response's or the request's) — "MUST NOT use a stored
  // response … without successful validation": only a stale-if-error window given for it
  // (RFC 5861 §4: "regardless of other freshness information") lets it answer an error.
  if (stored.noCache || request?.has('no-cache') === true) return within;
  // Fresh (staleness < 0), or stale within a window that exists.
  return staleness < 0 || within;
}
