/**
 * hash: runs after receive (and rules), on every request let through. Computes the primary
 * cache key and its LMDB key into the context; returns nothing. A site rule's cacheKey filters
 * the query and adds request values after the URL (src/cache/key-rules.ts).
 */

import { primaryKey, storageKey } from '../../cache/key.ts';
import { keyExtras, keyTarget } from '../../cache/key-rules.ts';
import type { RequestContext } from '../context.ts';
import { parseCookies } from '../site-rules.ts';

/** `scheme`: the scheme the client used (client.ts keyScheme: a trusted proxy's X-Forwarded-Proto). */
export function hash(ctx: RequestContext, scheme: 'http' | 'https' = ctx.scheme): void {
  const key = ctx.rules?.key;
  if (key === undefined) ctx.key = primaryKey(scheme, ctx.host, ctx.path, ctx.site!.sortQuery);
  else {
    const target = key.query === undefined ? ctx.path : keyTarget(ctx.path, key.query);
    const headers = ctx.req.headers;
    let cookies: Map<string, string> | undefined;
    const cookie = (name: string) => {
      cookies ??= parseCookies(headers.cookie);
      return cookies.get(name);
    };
    ctx.key =
      primaryKey(scheme, ctx.host, target, ctx.site!.sortQuery) +
      keyExtras(
        key,
        (name) => {
          const value = headers[name];
          return Array.isArray(value) ? value.join(', ') : value;
        },
        cookie,
        () => ctx.site!.rules?.regionsOf(ctx.clientAddress)[0],
      );
  }
  ctx.storage = storageKey(ctx.key);
}
