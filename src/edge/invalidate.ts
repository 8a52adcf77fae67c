/** RFC 9111 §4.4: after an unsafe method, invalidate the target (and same-origin Location/Content-Location). */
import { primaryKey, storageKey } from '../cache/key.ts';
import { urlsToInvalidate } from '../cache/policy/invalidation.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { keyScheme } from './client.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

export async function invalidateAfterUnsafe(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
): Promise<void> {
  const location = response.headers.location;
  const contentLocation = response.headers['content-location'];
  // The URL the request's key names, without what a cacheKey rule adds after a space.
  const space = ctx.key.indexOf(' ');
  const target = space === -1 ? ctx.key : ctx.key.slice(0, space);
  const urls = urlsToInvalidate(
    ctx.method,
    response.status,
    target,
    typeof location === 'string' ? location : undefined,
    typeof contentLocation === 'string' ? contentLocation : undefined,
  );
  // The target's key as stored (URL parsing would rewrite its path); Location and
  // Content-Location are resolved against it.
  if (urls.length === 0) return; // a safe method, or an error response: nothing is invalidated
  const keys = new Set([ctx.storage]);
  const copies = [target];
  const scheme = keyScheme(edge, ctx);
  for (const url of urls.slice(1)) {
    const parsed = new URL(url);
    const key = primaryKey(scheme, parsed.host, parsed.pathname + parsed.search, ctx.site!.sortQuery);
    keys.add(storageKey(key));
    copies.push(key);
  }
  // Each URL's copy without extras, and those a cacheKey rule keeps per request value.
  keys.add(storageKey(target));
  for (const key of keys) await edge.store.invalidateKey(key).catch(() => 0);
  if (ctx.site!.rules?.keysWithExtras !== true) return;
  for (const url of copies) await edge.store.invalidateKeyedCopies(url).catch(() => 0);
}
