/**
 * decode-stored: a request whose Accept-Encoding bucket has no stored representation, while the
 * object is stored as the origin encoded it (gzip sent to a gzip client, stored as it came) and
 * fresh, gets it decoded from the stored bytes rather than from a second origin fetch: the
 * identity body is committed as the object's identity variant (compressible like any fill, so
 * the request's own coding is then made from it by derive.ts), and the request answered from it.
 * Runs on the miss path only, in the encoder's bounded queue; concurrent requests share one
 * decoding. A body the transformation is forbidden for (`no-transform`, RFC 9110 §7.7), a stacked
 * or unknown coding, a partial entry or a stale one leaves the miss path to the origin.
 */
import { variantKey } from '../cache/key.ts';
import { acceptsCoding, DEFAULT_ENCODINGS, negotiateEncoding } from '../cache/policy/accept-encoding.ts';
import { decideReuse, requestDirectives } from '../cache/policy/reuse.ts';
import { secondaryKey } from '../cache/policy/vary.ts';
import { type EntryRecord, storedHeader } from '../cache/record.ts';
import { compressibleType, noTransform } from '../transform/compressible.ts';
import { decodable, singleCoding } from '../transform/decoder.ts';
import { type CompressionSettings, codingsFor, encoderOf, makesCodings, settingsFor } from './compression.ts';
import type { RequestContext } from './context.ts';
import { type Derived, madeOnce, representationFrom, type Sibling } from './derive.ts';
import type { Edge } from './edge.ts';

/** A stored origin-encoded entry of the request's object, and the coding its bytes are in. */
export interface Encoded {
  id: string;
  record: EntryRecord;
  coding: string;
}

/**
 * The stored origin-encoded entry this request may be answered from once decoded (synchronous
 * LMDB reads), or undefined: take the miss path. The request must take identity or a coding
 * the node makes; the entry must be a fresh 200 stored as it came, in one coding the node
 * decodes, without no-transform.
 */
export function encodedFor(edge: Edge, ctx: RequestContext): Encoded | undefined {
  const headers = ctx.req.headers;
  const wanted = negotiateEncoding(headers['accept-encoding'], codingsFor(edge, ctx));
  if (wanted === null) return undefined;
  if (wanted === 'identity' && !acceptsCoding(headers['accept-encoding'], 'identity')) return undefined;
  const directives = requestDirectives(headers['cache-control'], headers.pragma as string | undefined);
  for (const bucket of DEFAULT_ENCODINGS) {
    if (bucket === wanted) continue;
    const found = edge.store.lookup(ctx.storage, { ...headers, 'accept-encoding': bucket });
    if (found.kind !== 'found') continue;
    const record = found.record;
    const coding = singleCoding(record.contentEncoding);
    if (record.status !== 200 || record.range !== undefined) continue;
    if (record.originEtag !== undefined || record.made === true) continue;
    if (coding === undefined || !decodable(coding) || !record.vary.includes('accept-encoding')) continue;
    if (noTransform(storedHeader(record, 'cache-control'))) continue;
    if (headers.authorization !== undefined && !record.authOk) continue;
    if (decideReuse(record, directives, ctx.now).kind !== 'fresh') continue;
    return { id: found.id, record, coding };
  }
  return undefined;
}

/**
 * The identity representation decoded from `encoded`, stored (or found stored, or joined while
 * another request decodes it), as the sibling this request is answered from; undefined when it
 * could not be made (queue full, bytes that do not decode, a purge meanwhile): the miss path runs.
 */
export async function decodedSibling(
  edge: Edge,
  ctx: RequestContext,
  encoded: Encoded,
): Promise<Sibling | undefined> {
  const selecting = { ...ctx.req.headers, 'accept-encoding': 'identity' };
  const secondary = secondaryKey(encoded.record.vary, selecting);
  const id = variantKey(ctx.storage, secondary);
  const settings = settingsFor(edge, ctx);
  const derived = await madeOnce(edge, id, () => decode(edge, ctx.storage, encoded, settings, id, secondary));
  if (derived.kind !== 'stored') return undefined;
  const coding = negotiateEncoding(ctx.req.headers['accept-encoding'], codingsFor(edge, ctx));
  const identity =
    coding === null ||
    coding === 'identity' ||
    derived.record.compressible !== true ||
    !makesCodings(edge, ctx, derived.record);
  if (identity && !acceptsCoding(ctx.req.headers['accept-encoding'], 'identity')) return undefined;
  return { id: derived.id, record: derived.record, coding: identity ? undefined : coding };
}

function decode(
  edge: Edge,
  storage: string,
  encoded: Encoded,
  settings: CompressionSettings,
  id: string,
  secondary: string,
): Promise<Derived> {
  return representationFrom(edge, storage, encoded, {
    id,
    coding: encoded.coding,
    transform: (body) => encoderOf(edge).decode(encoded.coding, body, edge.config.cache.maxObjectSize),
    record: (decoded) => identityRecord(settings, encoded.record, secondary, decoded.length),
    failure: 'stored body does not decode',
  });
}

/**
 * The encoded record's fields as the identity representation: no Content-Encoding, its entity
 * tag weakened (RFC 9110 §8.8.1: same meaning, other bytes — as on a fill decoded on arrival),
 * compressible when its type is and it is large enough, so the other codings are made from it.
 */
function identityRecord(
  settings: CompressionSettings,
  source: EntryRecord,
  secondary: string,
  size: number,
): Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> {
  const { bodyId: _b, chunks: _c, size: _s, sums: _u, sum: _m, ...fields } = source;
  const weak = (etag: string) => (etag.startsWith('W/') ? etag : `W/${etag}`);
  const headers: string[] = [];
  for (let i = 0; i < source.headers.length; i += 2) {
    const name = source.headers[i]!;
    const lower = name.toLowerCase();
    if (lower === 'content-encoding' || lower === 'content-length') continue;
    headers.push(name, lower === 'etag' ? weak(source.headers[i + 1]!) : source.headers[i + 1]!);
  }
  const record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> = {
    ...fields,
    headers,
    contentEncoding: undefined,
    secondaryKey: secondary,
    etag: source.etag === undefined ? undefined : weak(source.etag),
  };
  // Revalidated with the origin's tag it stands for, as a coding the node made is: a 304 carrying
  // that (strong) tag then selects it, where its own weakened one selected nothing and every
  // revalidation was followed by a full refetch.
  if (source.etag !== undefined) record.originEtag = source.etag;
  const type = storedHeader(source, 'content-type');
  if (size >= settings.minSize && compressibleType(type, settings.types)) record.compressible = true;
  return record;
}
