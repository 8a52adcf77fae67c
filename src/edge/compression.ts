/**
 * Compression decisions the insert path and the lookup share (docs/compression.md): whether a
 * site compresses, whether a response gets compressed siblings, and the Vary it is stored with.
 * The state that outlives a request (the encoder and its bounded queue) is kept per Edge.
 */
import { acceptsCoding, type ContentCoding, negotiateEncoding } from '../cache/policy/accept-encoding.ts';
import type { HeaderMap } from '../cache/policy/semantics.ts';
import { parseVary, secondaryKey } from '../cache/policy/vary.ts';
import { type EntryRecord, storedHeader } from '../cache/record.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { compressible, noTransform } from '../transform/compressible.ts';
import { decodable, decodeStream, singleCoding } from '../transform/decoder.ts';
import { Encoder, type EncoderLevels } from '../transform/encoder.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

const encoders = new WeakMap<Edge, Encoder>();

/** The node's encoder (created on first use from `compression.levels` and `compression.queue`). */
export function encoderOf(edge: Edge): Encoder {
  let encoder = encoders.get(edge);
  if (encoder === undefined) {
    const metrics = edge.metrics;
    encoder = new Encoder(
      edge.config.compression.levels,
      edge.config.compression.queue,
      {
        compressed(coding, saved) {
          metrics.compressions.labels(coding).inc();
          // A coding larger than its source saves nothing (counters only go up).
          if (saved > 0) metrics.compressionBytesSaved.labels(coding).inc(saved);
        },
        queue: (pending) => metrics.compressionQueue.set(pending),
      },
      // Each holds its whole body: at most one of the largest storable at once.
      edge.config.cache.maxObjectSize,
    );
    encoders.set(edge, encoder);
  }
  return encoder;
}

/** What compresses a site's responses: the node's `compression` with the site's overrides. */
export interface CompressionSettings {
  readonly enabled: boolean;
  readonly encodings: readonly ContentCoding[];
  readonly minSize: number;
  readonly types: readonly string[];
  readonly levels: EncoderLevels;
}

const merged = new WeakMap<object, { base: CompressionSettings; settings: CompressionSettings }>();

/** The settings for this request's site (merged once per site and node configuration). */
export function settingsFor(edge: Edge, ctx: RequestContext): CompressionSettings {
  const base = edge.config.compression;
  const own = ctx.site?.compression;
  if (own === undefined) return base;
  let known = merged.get(own);
  if (known?.base !== base) {
    const settings: CompressionSettings = {
      enabled: own.enabled ?? base.enabled,
      encodings: own.encodings ?? base.encodings,
      minSize: own.minSize ?? base.minSize,
      types: own.types ?? base.types,
      levels: { ...base.levels, ...own.levels },
    };
    known = { base, settings };
    merged.set(own, known);
  }
  return known.settings;
}

/** The codings the node produces for the site, in its order of preference; empty when off. */
export function codingsFor(edge: Edge, ctx: RequestContext): readonly ContentCoding[] {
  const settings = settingsFor(edge, ctx);
  return settings.enabled ? settings.encodings : [];
}

/**
 * Whether a response about to be stored gets compressed siblings: compression on for the
 * site, a compressible identity 200 without no-transform, not announced smaller than
 * `compression.minSize`, and not an answer tied to one user
 * (a request with Authorization or Cookie) unless the site opted in — BREACH needs a secret
 * and attacker-chosen input in one compressed body, and such answers are where both meet.
 */
export function compressing(edge: Edge, ctx: RequestContext, status: number, headers: HeaderMap): boolean {
  const settings = settingsFor(edge, ctx);
  if (!settings.enabled) return false;
  if (!codingsAllowed(ctx, parseVary(headers.vary))) return false;
  // Known to be under minSize: no coding will ever be made, so no Vary and no variant split.
  const length = headers['content-length'];
  if (length !== undefined && /^\d+$/.test(length) && Number(length) < settings.minSize) return false;
  return compressibleKind(settings, status, headers);
}

/**
 * Whether a response that varies on other fields (the origin's Vary) and that `compressing`
 * turned down only for its size or for being one client's is stored as the identity variant all
 * the same: varying on Accept-Encoding, marked compressible, no coding ever made of it (derive.ts
 * serves it as identity to every bucket). The store keeps one set of Vary fields per URL: stored
 * on the origin's Vary alone, such a variant (`Vary: Cookie` with the session cookie, a small
 * `Accept-Language` variant) replaced the URL's compressed variants, which in turn replaced it,
 * and every request alternating between them went to the origin.
 */
export function identityVariant(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
  vary: readonly string[],
): boolean {
  // Varying on Accept-Encoding itself, it is stored under the same fields either way.
  if (vary.length === 0 || vary.includes('accept-encoding')) return false;
  const settings = settingsFor(edge, ctx);
  return settings.enabled && compressibleKind(settings, status, headers);
}

function compressibleKind(settings: CompressionSettings, status: number, headers: HeaderMap): boolean {
  return compressible(
    {
      status,
      contentType: headers['content-type'],
      contentEncoding: headers['content-encoding'],
      cacheControl: headers['cache-control'],
    },
    settings.types,
  );
}

/**
 * Whether another variant of this URL is stored varying on Accept-Encoding beside `vary`, the
 * origin's fields (the node added it, compressing or storing a coding the origin sent): a
 * response of the same URL the node does not compress (another status, another type) is stored
 * under the same fields, so it does not replace them (identityVariant says why).
 */
export function joinsEncodingVary(edge: Edge, ctx: RequestContext, vary: readonly string[]): boolean {
  if (vary.length === 0 || vary.includes('accept-encoding')) return false;
  let marker: ReturnType<Edge['store']['current']>;
  try {
    marker = edge.store.current(ctx.storage);
  } catch {
    return false;
  }
  return marker?.kind === 'vary' && marker.fields.join() === withAcceptEncoding(vary).join();
}

/**
 * The stored identity entry that answers this request as it is, for a Vary miss on `fields`
 * (the URL's, Accept-Encoding among them): one no coding is ever made of (under minSize, one
 * client's, a 404, an image: identityVariant, joinsEncodingVary) is the same bytes to every
 * bucket, as if stored on the origin's Vary alone. The lookup takes it as found, so that a stale
 * one is revalidated (conditional request, 304) like any other entry, not fetched again in full.
 */
export function identityOnly(
  edge: Edge,
  ctx: RequestContext,
  fields: readonly string[],
): { id: string; record: EntryRecord } | undefined {
  if (!fields.includes('accept-encoding')) return undefined;
  const value = ctx.req.headers['accept-encoding'];
  if (!acceptsCoding(value, 'identity')) return undefined;
  const found = edge.store.lookup(ctx.storage, { ...ctx.req.headers, 'accept-encoding': 'identity' });
  if (found.kind !== 'found' || found.record.compressible !== true) return undefined;
  const record = found.record;
  if (record.size >= settingsFor(edge, ctx).minSize && makesCodings(edge, ctx, record)) return undefined;
  return { id: found.id, record };
}

/**
 * Whether codings may be made of this stored identity entry for this request: a 200 of a type
 * the site compresses, without no-transform (an entry stored as the identity variant only to keep
 * its URL's Vary fields is not), and not one client's.
 */
export function makesCodings(
  edge: Edge,
  ctx: RequestContext,
  record: Pick<EntryRecord, 'status' | 'vary' | 'headers' | 'contentEncoding'>,
): boolean {
  if (record.status !== 200 || !codingsAllowed(ctx, record.vary)) return false;
  return compressibleKind(settingsFor(edge, ctx), 200, {
    'content-type': storedHeader(record, 'content-type'),
    'content-encoding': record.contentEncoding,
    'cache-control': storedHeader(record, 'cache-control'),
  });
}

/**
 * Whether codings may be made of a variant stored under these Vary fields for this request:
 * not when it is one client's (below), unless the site opted in (`compression.private`).
 */
export function codingsAllowed(ctx: RequestContext, vary: readonly string[] | '*'): boolean {
  return !personal(ctx, vary) || ctx.site?.compression?.private === true;
}

/**
 * Whether the stored variant is one client's: it varies on the Cookie or Authorization the
 * request carries (BREACH needs a secret and attacker-chosen input in one compressed body).
 * A response stored for every client alike holds no one's secret, whatever cookies the request
 * that filled it sent: judging it by them would leave the object uncompressed for everyone (one
 * request with an analytics cookie did) for its whole lifetime.
 */
function personal(ctx: RequestContext, vary: readonly string[] | '*'): boolean {
  const request = ctx.req.headers;
  if (request.cookie === undefined && request.authorization === undefined) return false;
  if (vary === '*') return true;
  return (
    (request.cookie !== undefined && vary.includes('cookie')) ||
    (request.authorization !== undefined && vary.includes('authorization'))
  );
}

/**
 * Whether a request is in another Accept-Encoding bucket of the object a fill stores as its
 * identity variant (a compressible one): the request is answered from the stored entry, or
 * the coding made from it, once the fill is committed — not by a fetch of its own. A fill in
 * another worker does not say whether it is compressible: one that is not only makes the
 * request look again after the commit, and then fetch.
 */
export function otherCoding(ctx: RequestContext, fill: { vary: string[]; secondaryKey: string }): boolean {
  if (!fill.vary.includes('accept-encoding')) return false;
  const headers = ctx.req.headers;
  if (secondaryKey(fill.vary, headers) === fill.secondaryKey) return false;
  return secondaryKey(fill.vary, { ...headers, 'accept-encoding': 'identity' }) === fill.secondaryKey;
}

/** Whether a Content-Encoding value names a coding (not absent, empty or `identity`). */
export function contentCoded(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value.split(',').some((coding) => !['', 'identity'].includes(coding.trim().toLowerCase()));
}

/** Vary field names with accept-encoding added (sorted, unique, as parseVary returns them). */
export function withAcceptEncoding(fields: readonly string[]): string[] {
  return fields.includes('accept-encoding') ? [...fields] : [...fields, 'accept-encoding'].sort();
}

/** The stored header list with one Vary carrying Accept-Encoding, merged with the origin's. */
export function mergeVary(headers: string[]): void {
  const names: string[] = [];
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.toLowerCase() !== 'vary') continue;
    names.unshift(
      ...headers[i + 1]!.split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    );
    headers.splice(i, 2);
  }
  if (!names.some((name) => name.toLowerCase() === 'accept-encoding')) names.push('Accept-Encoding');
  headers.push('Vary', names.join(', '));
}

/** RFC 9110 §8.8.3: the representation's own strong (or weak) tag, suffixed with its coding. */
export function suffixEtag(etag: string, coding: ContentCoding): string {
  return etag.endsWith('"') ? `${etag.slice(0, -1)}-${coding}"` : etag;
}

/**
 * A fill asks the origin for the request's bucket only (fetch.ts); an origin that answers
 * another coding anyway (`Content-Encoding: gzip` to `Accept-Encoding: br` or `identity`) would
 * leave the bucket's entry in a coding some of its clients cannot read. Such a 200 is decoded
 * as it arrives: stored and served as identity (compressible like any other, so the bucket's
 * own coding is made from it), its entity tag weakened (RFC 9110 §8.8.1: same meaning, other
 * bytes; as nginx's gzip filter does), its Content-Length dropped (known only at the end).
 * A field no bucket satisfies was forwarded as it came: that answer is left as it is. So is one
 * with `no-transform` (RFC 9110 §7.7: "A proxy MUST NOT transform the content"): its client and
 * the bucket get the coding the origin chose.
 */
export function decodeUnasked(ctx: RequestContext, response: OriginResponse): OriginResponse {
  if (response.status !== 200) return response;
  const cacheControl = response.headers['cache-control'];
  if (noTransform(Array.isArray(cacheControl) ? cacheControl.join(', ') : cacheControl)) return response;
  const coding = singleCoding(response.headers['content-encoding']);
  if (coding === undefined || !decodable(coding)) return response;
  const bucket = negotiateEncoding(ctx.req.headers['accept-encoding']);
  if (bucket === null || bucket === coding || (bucket === 'gzip' && coding === 'x-gzip')) return response;
  const { 'content-encoding': _coding, 'content-length': _length, ...headers } = response.headers;
  const etag = headers.etag;
  const decoded = { ...response, headers, body: decodeStream(coding, response.body) };
  if (typeof etag === 'string' && !etag.startsWith('W/')) {
    headers.etag = `W/${etag}`;
    // Revalidated with the origin's own tag (plan.ts): a 304 carrying it then selects the entry.
    decoded.originEtag = etag;
  }
  return decoded;
}
