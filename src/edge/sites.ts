/**
 * Host → site resolution as nginx resolves server names: the exact name first, then the longest
 * matching *.suffix wildcard (whatever the order of the sites), then the catch-all.
 */

import { keyTarget } from '../cache/key-rules.ts';
import type { SiteConfig } from '../config/schema.ts';
import type { OriginPool } from '../origin/pool.ts';
import type { SiteGuard } from '../security/site-guard.ts';
import { ErrorPages } from './error-pages.ts';
import { type RegionOf, SiteRules } from './site-rules.ts';

export interface Site {
  readonly name: string;
  readonly pool: OriginPool;
  readonly sortQuery: boolean;
  /** Site-level stale-while-revalidate for responses without stale directives (seconds). */
  readonly grace: number;
  /** Replay a stored page's Link hints as 103 while its revalidation waits (edge/interim.ts). */
  readonly earlyHints: boolean;
  /** The site's security rules (the guard phase), when built. */
  readonly guard?: SiteGuard | undefined;
  /** Strict-Transport-Security value for answers over TLS, or undefined. */
  readonly hsts: string | undefined;
  /** The site's cache rules (the rules phase); undefined when it has none and honors client directives. */
  readonly rules: SiteRules | undefined;
  /** Plain requests are redirected to https on this port (undefined: served). */
  readonly httpsPort: number | undefined;
  /** Templates for the errors the node answers itself (errorPages), or undefined. */
  readonly errorPages: ErrorPages | undefined;
  /** Per-site compression override (each field undefined: the node's setting); private answers opted in. */
  readonly compression?: SiteConfig['compression'] | undefined;
}

export class SiteTable {
  readonly #exact = new Map<string, Site>();
  readonly #wildcards: Array<[string, Site]> = [];
  #catchAll: Site | undefined;
  /** Recently resolved Host values (bounded): most requests repeat a few hosts. */
  readonly #recent = new Map<string, Site | undefined>();
  /** Every site, in configuration order (/stats). */
  readonly all: Site[] = [];

  constructor(
    sites: readonly SiteConfig[],
    pools: (site: SiteConfig) => OriginPool,
    guards?: (site: SiteConfig) => SiteGuard,
    regionOf?: RegionOf,
  ) {
    for (const config of sites) {
      const site: Site = {
        name: config.name,
        pool: pools(config),
        sortQuery: config.sortQuery,
        grace: Math.floor(config.grace / 1000),
        earlyHints: config.earlyHints,
        guard: guards?.(config),
        compression: config.compression,
        rules:
          config.rules.length > 0 || config.clientCacheControl === 'ignore'
            ? new SiteRules(config.rules, config.clientCacheControl, regionOf)
            : undefined,
        hsts:
          config.hsts > 0
            ? `max-age=${Math.floor(config.hsts / 1000)}${config.hstsIncludeSubDomains ? '; includeSubDomains' : ''}`
            : undefined,
        httpsPort:
          config.httpsRedirect === false
            ? undefined
            : config.httpsRedirect === true
              ? 443
              : config.httpsRedirect,
        errorPages: config.errorPages === undefined ? undefined : new ErrorPages(config.errorPages),
      };
      this.all.push(site);
      for (const pattern of config.hosts) {
        if (pattern === '*') this.#catchAll ??= site;
        else if (pattern.startsWith('*.')) this.#wildcards.push([pattern.slice(1), site]);
        else if (!this.#exact.has(pattern)) this.#exact.set(pattern, site);
      }
    }
    // Longest suffix first; a stable sort keeps the first site for a suffix named twice.
    this.#wildcards.sort((a, b) => b[0].length - a[0].length);
  }

  /**
   * The target as the site for `host` keys a GET of it: the query its rules filter and sort
   * (cacheKey.query; rules on headers, cookies or region are judged for a request without any),
   * else the target unchanged. Purges and /cache use it to find what requests stored.
   */
  keyedTarget(host: string, target: string): string {
    const query = this.resolve(host)?.rules?.decide('GET', target, {}, '').key?.query;
    return query === undefined ? target : keyTarget(target, query);
  }

  /** The site for a Host header value (port ignored unless a pattern names it). */
  resolve(host: string): Site | undefined {
    const recent = this.#recent.get(host);
    if (recent !== undefined || this.#recent.has(host)) return recent;
    const site = this.#match(host);
    if (this.#recent.size >= 1024) this.#recent.clear();
    this.#recent.set(host, site);
    return site;
  }

  #match(host: string): Site | undefined {
    const lower = host.toLowerCase();
    const exact = this.#exact.get(lower);
    if (exact) return exact;
    const name = lower.replace(/:\d+$/, '').replace(/\.$/, '');
    const byName = this.#exact.get(name);
    if (byName) return byName;
    for (const [suffix, site] of this.#wildcards) if (name.endsWith(suffix)) return site;
    return this.#catchAll;
  }
}
