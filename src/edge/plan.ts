/**
 * plan (the first step of the insert path): decides whether an origin response is stored (every "not stored" has a
 * reason) and flattens the policy verdict into the record a hit will read.
 */
import { variantKey } from '../cache/key.ts';
import { droppedQueryValues } from '../cache/key-rules.ts';
import { negotiateEncoding } from '../cache/policy/accept-encoding.ts';
import {
  type CacheOverrides,
  type RuleTtl,
  ruledLifetime,
  ruleTtl,
  withoutIgnored,
} from '../cache/policy/overrides.ts';
import { storablePartial } from '../cache/policy/partial.ts';
import { type HeaderMap, toHeaderMap } from '../cache/policy/semantics.ts';
import {
  type CacheDirectives,
  decideStorable,
  responseDirectives,
  type StorableVerdict,
} from '../cache/policy/storable.ts';
import { parseVary, secondaryKey } from '../cache/policy/vary.ts';
import { type EntryRecord, RECORD_VERSION } from '../cache/record.ts';
import { appendVia, endToEndResponseHeaders } from '../http/headers.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { checkStore } from '../security/store-checks.ts';
import {
  compressing,
  contentCoded,
  identityVariant,
  joinsEncodingVary,
  mergeVary,
  withAcceptEncoding,
} from './compression.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import type { InsertPlan } from './fill-driver.ts';
import { freshnessFields } from './freshness.ts';
import { storeRequestHeaders, strippedOnStore } from './rule-effects.ts';
import { noteSecurity } from './security-note.ts';
import { hasTierFields } from './tier.ts';

/** Fields never stored: recomputed on delivery, or ours to add. */
const NOT_STORED: ReadonlySet<string> = new Set([
  'content-length',
  'age',
  'date-received',
  // RFC 9211: the parent tier's members describe that one response; a hit here is ours alone.
  'cache-status',
]);

/** NOT_STORED with the node's stripStored fields, made once per set of stripStored fields. */
const baseDrops = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

/** The fields a stored response goes without: a shared set unless this response adds some. */
function droppedOnStore(
  edge: Edge,
  stripFields: readonly string[],
  ruled: readonly string[],
  partial: boolean,
): ReadonlySet<string> {
  let base = baseDrops.get(edge.stripStored);
  if (base === undefined) {
    base = new Set([...NOT_STORED, ...edge.stripStored]);
    baseDrops.set(edge.stripStored, base);
  }
  if (stripFields.length === 0 && ruled.length === 0 && !partial) return base;
  const drop = new Set([...base, ...stripFields, ...ruled]);
  if (partial) drop.add('content-range');
  return drop;
}

export type StorePlan = { storable: false; reason: string } | ({ storable: true } & InsertPlan);

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

/**
 * Whether the fields a 304 brings reflect an unkeyed request value (RFC 9111 §4.3.4 updates the
 * stored response with them): such an update answers this client only, as the same fields on a
 * 200 would not be stored (`Access-Control-Allow-Origin` echoing another site's Origin, a
 * reflected `Link`).
 */
export function updateReflects(edge: Edge, ctx: RequestContext, response: OriginResponse): boolean {
  return securityChecks(edge, ctx, response, false).reason === 'poison-suspect';
}

/** The site's cache-poisoning and deception checks (src/security/): a reason not to store, or a body scanner. */
function securityChecks(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
  deception = true,
): ReturnType<typeof checkStore> {
  const guard = ctx.site?.guard;
  const query = ctx.rules?.key?.query;
  const checked = checkStore({
    path: ctx.path,
    host: ctx.host,
    requestHeaders: ctx.req.headers,
    // As the origin request was made (fetch.ts): a verified child tier's claims went on too.
    trusted: ctx.tierChild !== undefined || edge.trusted(ctx.clientAddress),
    unkeyedQuery: query === undefined ? undefined : droppedQueryValues(ctx.path, query),
    responseHeaders: response.headers,
    poisonCheck: guard?.poisonCheck ?? true,
    poisonIgnore: guard?.poisonIgnore,
    deceptionCheck: deception && (guard?.deceptionCheck ?? true),
  });
  if (checked.reason !== undefined) noteSecurity(edge, ctx, checked.reason, 'not-stored');
  return checked;
}

/**
 * The Vary fields and secondary key an entry is stored under. A compressible identity body
 * varies on Accept-Encoding (merged with the origin's Vary) and is the `identity` variant,
 * whatever bucket asked for it — so does one that varies on other fields too, when only its size
 * or its being one client's keeps it uncompressed (compression.ts identityVariant), or when its
 * URL's other variants are stored so (joinsEncodingVary: a 404 or an image beside them). An
 * origin-encoded body varies on it too, whatever the origin's Vary says, so it never reaches a
 * bucket that did not ask for its coding (docs/compression.md). The answer to a request that no
 * bucket satisfies (`deflate, identity;q=0`, forwarded as it came) is that request's own variant,
 * varying on Accept-Encoding, never the object's identity entry: stored as that, it replaced the
 * identity entry and the codings made from it on every such request, and was never found again.
 */
function variantOf(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
): { compress: boolean; varyEncoding: boolean; fields: string[]; secondary: string } {
  const vary = parseVary(headers.vary);
  const coded = contentCoded(headers['content-encoding']);
  // The Vary clients see names Accept-Encoding only where the body may reach them coded: the
  // node compresses it or the origin coded it. An identity variant stored under Accept-Encoding
  // only to keep its URL's Vary fields is the same bytes to every client: the origin's Vary.
  const codable = vary !== '*' && compressing(edge, ctx, status, headers);
  const identity =
    vary !== '*' &&
    (codable ||
      identityVariant(edge, ctx, status, headers, vary) ||
      (status !== 206 && !coded && joinsEncodingVary(edge, ctx, vary)));
  const compress = identity && negotiateEncoding(ctx.req.headers['accept-encoding']) !== null;
  const varyEncoding = vary !== '*' && (codable || coded);
  const fields = vary === '*' ? [] : identity || coded ? withAcceptEncoding(vary) : vary;
  const selecting = compress ? { ...ctx.req.headers, 'accept-encoding': 'identity' } : ctx.req.headers;
  return {
    compress,
    varyEncoding,
    fields,
    secondary: fields.length > 0 ? secondaryKey(fields, selecting) : '',
  };
}

/** The lifetime the rules give a response the origin gave none (their TTL, or minTtl alone). */
function ruleLifetime(overrides: CacheOverrides, status: number): RuleTtl | undefined {
  const ruled = ruledLifetime(overrides, status, 0, false);
  if (!ruled.ruled) return undefined;
  return { ttl: ruled.lifetime, named: ruleTtl(overrides, status)?.named ?? false };
}

/**
 * RFC 9111 §3 (storable.ts), with what the site's rules change: client directives, their TTLs.
 * Every fill asks the origin with GET (a HEAD's too): its response is judged as a GET's.
 */
function storableVerdict(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
  directives: CacheDirectives,
): StorableVerdict {
  const overrides = ctx.rules?.overrides;
  return decideStorable({
    method: 'GET',
    // node:http joins repeated request fields into one string (only Set-Cookie, which no
    // decision here reads, stays an array): its map is read as it is, not copied.
    requestHeaders: storeRequestHeaders(ctx, ctx.req.headers as HeaderMap),
    status,
    responseHeaders: headers,
    response: directives,
    serverErrors: edge.config.cache.maxErrorTtl > 0,
    rule: overrides && ruleLifetime(overrides, status),
  });
}

/**
 * Whether a stored response updated with a 304's fields (RFC 9111 §4.3.4) may still be shared:
 * judged as a 200 carrying those fields would be (§3), so a 304 cannot bring in what a full
 * response could not (one user's Set-Cookie, private, Vary: *). `headers` is the updated
 * response's field map; the request is the one that revalidated (its fill method is GET).
 */
export function updatedStorable(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  headers: HeaderMap,
): StorableVerdict {
  const seen = withoutIgnored(headers, ctx.rules?.overrides);
  return storableVerdict(edge, ctx, status, seen, responseDirectives(seen, edge.name));
}

export function planStore(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
  requestTime: number,
  responseTime: number,
): StorePlan {
  // The site's rules: the origin fields they ignore are not seen by any decision below.
  const headers = withoutIgnored(toHeaderMap(response.headers), ctx.rules?.overrides);
  const directives = responseDirectives(headers, edge.name);
  const verdict = storableVerdict(edge, ctx, response.status, headers, directives);
  if (!verdict.storable) return { storable: false, reason: verdict.reason };
  const checked = securityChecks(edge, ctx, response);
  if (checked.reason !== undefined) return { storable: false, reason: checked.reason };
  const lengthHeader = headers['content-length'];
  const contentLength =
    lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (contentLength !== undefined && contentLength > edge.config.cache.maxObjectSize) {
    return { storable: false, reason: 'too-large' };
  }
  if (!edge.store.writable) return { storable: false, reason: 'store-unavailable' };
  const { compress, varyEncoding, fields, secondary } = variantOf(edge, ctx, response.status, headers);
  // RFC 9111 §3.3: a 206 becomes a partial entry; its piece is kept apart from its headers.
  const range = response.status === 206 ? storablePartial(headers) : undefined;
  const drop = droppedOnStore(edge, verdict.stripFields, strippedOnStore(ctx), range !== undefined);
  const stored = endToEndResponseHeaders(response.headers, drop);
  stored.push('Via', appendVia(response.headers.via, '1.1', edge.name));
  if (varyEncoding) mergeVary(stored);
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
    ...freshnessFields(edge, ctx, response.status, headers, requestTime, responseTime, directives),
  };
  if (verdict.noCache) record.noCache = true;
  if (hasTierFields(edge, stored)) record.tierFields = true;
  if (range) record.range = range;
  if (compress) record.compressible = true;
  if (response.originEtag !== undefined && response.status === 200) record.originEtag = response.originEtag;
  return {
    storable: true,
    id: variantKey(ctx.storage, secondary),
    record,
    contentLength,
    scanner: checked.scanner,
  };
}
