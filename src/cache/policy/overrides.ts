/**
 * What a site's cache rules override of the origin's caching (docs/caching.md, Rules): TTLs
 * when the origin gives none, clamps, stale windows, and origin fields the decisions ignore
 * (like nginx `proxy_ignore_headers`). Pure: storable.ts and stored-freshness.ts apply it at
 * their own decision points, so nothing of RFC 9111 is decided twice.
 */
import type { HeaderMap } from './semantics.ts';

/** Origin fields a rule may make the cache decisions ignore. */
export type IgnoredField = 'cache-control' | 'expires' | 'set-cookie' | 'vary';

export interface CacheOverrides {
  /** Seconds of lifetime when the origin gives no explicit freshness. */
  ttl?: number | undefined;
  /** The same per status ('404') or class ('4xx'); a named status may be stored even if errorStorable says no. */
  statusTtl?: ReadonlyMap<string, number> | undefined;
  minTtl?: number | undefined;
  maxTtl?: number | undefined;
  /** stale-while-revalidate / stale-if-error seconds when the origin gives none. */
  swr?: number | undefined;
  sie?: number | undefined;
  ignore?: ReadonlySet<IgnoredField> | undefined;
}

/** A rule's default lifetime for a status: per status, then per class, then `ttl`. */
export interface RuleTtl {
  ttl: number;
  /** Given by statusTtl for this status or its class (not the catch-all ttl). */
  named: boolean;
}

export function ruleTtl(overrides: CacheOverrides | undefined, status: number): RuleTtl | undefined {
  if (overrides === undefined) return undefined;
  const table = overrides.statusTtl;
  if (table !== undefined) {
    const exact = table.get(String(status));
    if (exact !== undefined) return { ttl: exact, named: true };
    const kind = table.get(`${Math.floor(status / 100)}xx`);
    if (kind !== undefined) return { ttl: kind, named: true };
  }
  return overrides.ttl === undefined ? undefined : { ttl: overrides.ttl, named: false };
}

/** The response fields with those the rules ignore left out (the decisions never see them). */
export function withoutIgnored(headers: HeaderMap, overrides: CacheOverrides | undefined): HeaderMap {
  const ignore = overrides?.ignore;
  if (ignore === undefined || ignore.size === 0) return headers;
  const kept: HeaderMap = { ...headers };
  for (const name of ignore) delete kept[name];
  return kept;
}

/** The lifetime after the rules: their TTL where the origin gave none, then minTtl/maxTtl. */
export function ruledLifetime(
  overrides: CacheOverrides,
  status: number,
  lifetime: number,
  explicit: boolean,
): { lifetime: number; ruled: boolean } {
  let result = lifetime;
  let ruled = false;
  const fallback = explicit ? undefined : ruleTtl(overrides, status);
  if (fallback !== undefined) {
    result = fallback.ttl;
    ruled = true;
  }
  if (overrides.minTtl !== undefined && result < overrides.minTtl) {
    result = overrides.minTtl;
    ruled = true;
  }
  if (overrides.maxTtl !== undefined && result > overrides.maxTtl) {
    result = overrides.maxTtl;
    ruled = true;
  }
  return { lifetime: result, ruled };
}
