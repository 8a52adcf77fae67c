/** RFC 9111 §4.4: after an unsafe method, invalidate the target (and same-origin Location/Content-Location). */
import { primaryKey, storageKey } from '../cache/key.ts';
import { urlsToInvalidate } from '../cache/policy/invalidation.ts';
import { toHeaderMap } from '../cache/policy/semantics.ts';
import type { EntryRecord } from '../cache/record.ts';
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

/**
 * RFC 9111 §4.3.5: a 200 to a HEAD that reached the origin tells what a GET would get now. The
 * stored GET response that could have been chosen for that request is marked stale (its next
 * use revalidates) when the HEAD's entity tag, Last-Modified or length differs from it; a field
 * the HEAD's answer leaves out changes nothing.
 */
export async function invalidateAfterHead(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
): Promise<void> {
  if (response.status !== 200) return;
  const found = edge.store.lookup(ctx.storage, ctx.req.headers);
  if (found.kind !== 'found' || found.record.range !== undefined) return;
  if (!headDiffers(found.record, response.headers)) return;
  await edge.store.write(() => edge.store.invalidateVariantInTxn(found.id)).catch(() => false);
}

function headDiffers(record: EntryRecord, headers: OriginResponse['headers']): boolean {
  const {
    etag,
    'last-modified': modified,
    'content-length': length,
    'content-encoding': coding,
  } = toHeaderMap(headers);
  if (etag !== undefined && etag !== (record.originEtag ?? record.etag)) return true;
  if (modified !== undefined && modified !== record.lastModified) return true;
  // A length compares only between the same bytes: not with a coding the node made, nor across codings.
  const sameBytes = record.originEtag === undefined && (coding ?? '') === (record.contentEncoding ?? '');
  return sameBytes && length !== undefined && /^\d+$/.test(length) && Number(length) !== record.size;
}
