/**
 * The freshness fields of a record (src/cache/policy/stored-freshness.ts), with this node's
 * settings and the request's credentials filled in. Used when a response is stored and when
 * a 304 refreshes it. Not a phase.
 */
import { withoutIgnored } from '../cache/policy/overrides.ts';
import type { HeaderMap } from '../cache/policy/semantics.ts';
import { type CacheDirectives, responseDirectives } from '../cache/policy/storable.ts';
import { type StoredFreshnessFields, storedFreshness } from '../cache/policy/stored-freshness.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

export function freshnessFields(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
  requestTime: number,
  responseTime: number,
  /** The directives of `headers`, when the caller parsed them already (the ignored fields gone). */
  directives?: CacheDirectives,
): StoredFreshnessFields {
  const cache = edge.config.cache;
  // The site's rules (overrides.ts): the origin fields they ignore, their TTLs and windows.
  const overrides = ctx.rules?.overrides;
  const fields = withoutIgnored(headers, overrides);
  return storedFreshness({
    status,
    headers: fields,
    cache: directives ?? responseDirectives(fields, edge.name),
    requestTime,
    responseTime,
    heuristicFraction: cache.heuristicFraction,
    heuristicMaxMs: cache.heuristicMax,
    credentials: ctx.req.headers.cookie !== undefined || ctx.req.headers.authorization !== undefined,
    maxErrorLifetime: Math.floor(cache.maxErrorTtl / 1000),
    grace: ctx.site?.grace ?? 0,
    overrides,
  });
}
