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
  const urls = urlsToInvalidate(
    ctx.method,
    response.status,
    ctx.key,
    typeof location === 'string' ? location : undefined,
    typeof contentLocation === 'string' ? contentLocation : undefined,
  );
  // The target's key as stored (URL parsing would rewrite its path); Location and
  // Content-Location are resolved against it.
  if (urls.length === 0) return; // a safe method, or an error response: nothing is invalidated
  const keys = new Set([ctx.storage]);
  const scheme = keyScheme(edge, ctx);
  for (const url of urls.slice(1)) {
    const parsed = new URL(url);
    keys.add(
      storageKey(primaryKey(scheme, parsed.host, parsed.pathname + parsed.search, ctx.site!.sortQuery)),
    );
  }
  for (const key of keys) await edge.store.invalidateKey(key).catch(() => 0);
}
