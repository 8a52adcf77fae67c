/**
 * Partial entries a Range miss may complete (RFC 9111 §3.4): which stored piece, and what to
 * ask the origin for. Not a phase: the gate finds the piece, the combine phase completes it.
 */
import { isStrongEtag, missingSpan, type StoredRange, spanHeader } from '../cache/policy/partial.ts';
import type { EntryRecord } from '../cache/record.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

/** A stored partial entry a Range miss may complete, and what to ask the origin for. */
export interface Combinable {
  id: string;
  record: EntryRecord;
  piece: StoredRange;
  /** Range and If-Range field values for the origin request. */
  range: string;
  ifRange: string;
}

/**
 * The partial entry a Range request may be completed from: a plain GET (no conditionals) whose
 * single range reaches past a stored piece with a strong ETag, touching or overlapping it.
 * Only the ETag is used as the validator: a Last-Modified date is strong only under the
 * conditions of RFC 9110 §8.8.2.2, which a cache cannot check for a stored piece.
 */
export function combinable(edge: Edge, ctx: RequestContext): Combinable | undefined {
  const headers = ctx.req.headers;
  if (ctx.method !== 'GET' || headers.range === undefined) return undefined;
  if (
    headers['if-range'] !== undefined ||
    headers['if-none-match'] !== undefined ||
    headers['if-modified-since'] !== undefined ||
    headers['if-match'] !== undefined ||
    headers['if-unmodified-since'] !== undefined
  )
    return undefined;
  const found = edge.store.lookup(ctx.storage, headers);
  if (found.kind !== 'found') return undefined;
  const record = found.record;
  const piece = record.range;
  if (piece === undefined || !isStrongEtag(record.etag) || record.invalidated) return undefined;
  if (headers.authorization !== undefined && !record.authOk) return undefined;
  // Freshness does not matter: a 206 carrying the same strong ETag validates the stored piece.
  const span = missingSpan(headers.range, piece);
  if (span === undefined) return undefined;
  return { id: found.id, record, piece, range: spanHeader(span), ifRange: record.etag };
}
