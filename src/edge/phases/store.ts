/**
 * store: decides whether an origin response is stored (every "not stored" has a
 * reason) and flattens the policy verdict into the record a hit will read.
 */
import { variantKey } from '../../cache/key.ts';
import {
  correctedInitialAge,
  freshnessLifetime,
  isExplicit,
  staleWindows,
} from '../../cache/policy/freshness.ts';
import { storablePartial } from '../../cache/policy/partial.ts';
import { type HeaderMap, toHeaderMap } from '../../cache/policy/semantics.ts';
import { decideStorable, responseDirectives, type StorableVerdict } from '../../cache/policy/storable.ts';
import { parseVary, secondaryKey } from '../../cache/policy/vary.ts';
import { type EntryRecord, RECORD_VERSION } from '../../cache/record.ts';
import { appendVia, endToEndResponseHeaders } from '../../http/headers.ts';
import type { OriginResponse } from '../../origin/pool.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';

/** Fields never stored: recomputed on delivery, or ours to add. */
const NOT_STORED: ReadonlySet<string> = new Set(['content-length', 'age', 'date-received']);

export type StorePlan =
  | { storable: false; reason: string }
  | {
      storable: true;
      id: string;
      record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'>;
      contentLength: number | undefined;
    };

/** The freshness part of a record, from a response's header fields (also used after a 304). */
export function freshnessFields(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
  requestTime: number,
  responseTime: number,
) {
  const cc = responseDirectives(headers, edge.name);
  const d = cc.directives;
  const freshness = freshnessLifetime({
    status,
    directives: d,
    targeted: cc.targeted,
    date: headers.date,
    expires: headers.expires,
    lastModified: headers['last-modified'],
    responseTime,
    heuristicFraction: edge.config.cache.heuristicFraction,
    heuristicMaxMs: edge.config.cache.heuristicMax,
    credentials: ctx.req.headers.cookie !== undefined || ctx.req.headers.authorization !== undefined,
    maxErrorLifetime: Math.floor(edge.config.cache.maxErrorTtl / 1000),
  });
  const windows = staleWindows(d);
  const hasStaleDirective = d.has('stale-while-revalidate') || d.has('stale-if-error');
  // Never reused without validation: a response with no freshness the origin gave (it may be
  // one user's page: no max-stale, grace or stale-if-error hands it to another), and a
  // server error (its short capped lifetime is all it gets).
  const neverStale = (!isExplicit(freshness.source) && freshness.lifetime <= 0) || status >= 500;
  // A site's grace extends freshness the origin gave; it gives none to what had none.
  const grace = freshness.lifetime > 0 ? (ctx.site?.grace ?? 0) : 0;
  return {
    lifetime: freshness.lifetime,
    source: freshness.source,
    responseTime,
    initialAge: correctedInitialAge(headers.age, headers.date, requestTime, responseTime),
    swr: neverStale ? 0 : hasStaleDirective ? windows.swr : grace,
    sie: neverStale ? 0 : windows.sie,
    noStale: neverStale || d.has('must-revalidate') || d.has('proxy-revalidate') || d.has('s-maxage'),
    noCache: d.has('no-cache') && (d.get('no-cache') ?? '') === '',
    invalidated: false,
    authOk: d.has('public') || d.has('s-maxage') || d.has('must-revalidate'),
    etag: headers.etag,
    lastModified: headers['last-modified'],
    contentEncoding: headers['content-encoding'],
  };
}

/** Tags from the configured headers: Surrogate-Key is space separated, the others comma separated. */
export function extractTags(edge: Edge, headers: HeaderMap): string[] {
  const tags = new Set<string>();
  for (const name of edge.tagHeaders) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const tag of value.split(name === 'surrogate-key' ? /\s+/ : /\s*,\s*/)) {
      if (tag === '') continue;
      if (tag.length > 256 || tags.size >= 128) {
        edge.log.warn({ header: name, tag: tag.slice(0, 64) }, 'tag ignored: over the tag limits');
        continue;
      }
      tags.add(tag);
    }
  }
  return [...tags];
}

export function planStore(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
  requestTime: number,
  responseTime: number,
): StorePlan {
  const headers = toHeaderMap(response.headers);
  const verdict: StorableVerdict = decideStorable({
    method: ctx.method,
    requestHeaders: toHeaderMap(ctx.req.headers),
    status: response.status,
    responseHeaders: headers,
    response: responseDirectives(headers, edge.name),
    serverErrors: edge.config.cache.maxErrorTtl > 0,
  });
  if (!verdict.storable) return { storable: false, reason: verdict.reason };
  const lengthHeader = headers['content-length'];
  const contentLength =
    lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (contentLength !== undefined && contentLength > edge.config.cache.maxObjectSize) {
    return { storable: false, reason: 'too-large' };
  }
  if (!edge.store.writable) return { storable: false, reason: 'store-unavailable' };
  const vary = parseVary(headers.vary);
  const fields = vary === '*' ? [] : vary;
  const secondary = fields.length > 0 ? secondaryKey(fields, ctx.req.headers) : '';
  // RFC 9111 §3.3: a 206 becomes a partial entry; its piece is kept apart from its headers.
  const range = response.status === 206 ? storablePartial(headers) : undefined;
  const drop = new Set([...NOT_STORED, ...edge.stripResponse, ...verdict.stripFields]);
  if (range) drop.add('content-range');
  const stored = endToEndResponseHeaders(response.headers, drop);
  stored.push('Via', appendVia(response.headers.via, '1.1', edge.name));
  const record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> = {
    kind: 'entry',
    v: RECORD_VERSION,
    url: ctx.key,
    status: response.status,
    headers: stored,
    chunkSize: edge.config.cache.chunkSize,
    tags: extractTags(edge, headers),
    vary: fields,
    secondaryKey: secondary,
    storedAt: responseTime,
    ...freshnessFields(edge, ctx, response.status, headers, requestTime, responseTime),
  };
  if (verdict.noCache) record.noCache = true;
  if (range) record.range = range;
  return { storable: true, id: variantKey(ctx.storage, secondary), record, contentLength };
}
