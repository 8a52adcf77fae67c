/**
 * Partial content (RFC 9110 §14, RFC 9111 §3.3): which 206 responses may be stored as a
 * partial entry, and whether a Range request falls wholly inside what one holds.
 * Pure: no I/O.
 */

/** One stored contiguous piece of a representation: bytes start..end (inclusive). */
export interface StoredRange {
  start: number;
  end: number;
  /** The representation's complete length, when the origin said it ('*' leaves it unknown). */
  complete: number | undefined;
}

/** RFC 9110 §14.4: `Content-Range: bytes first-last/complete` (complete may be `*`). */
export function parseContentRange(value: string | undefined): StoredRange | undefined {
  if (value === undefined) return undefined;
  const match = /^\s*bytes\s+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)\s*$/i.exec(value);
  if (match === null) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const complete = match[3] === '*' ? undefined : Number(match[3]);
  // §14.4: "a Content-Range field value is invalid if ... last-pos < first-pos, or the
  // complete-length is less than or equal to the last-pos".
  if (end < start || (complete !== undefined && complete <= end)) return undefined;
  return { start, end, complete };
}

/**
 * RFC 9111 §3.3: a cache may store an incomplete response. A 206 is stored only when it is
 * one part (not multipart/byteranges) whose Content-Range agrees with its Content-Length:
 * a body that does not match what it claims to be is not trusted with later requests.
 */
export function storablePartial(headers: {
  'content-range'?: string | undefined;
  'content-length'?: string | undefined;
  'content-type'?: string | undefined;
  'content-encoding'?: string | undefined;
}): StoredRange | undefined {
  if (/^\s*multipart\/byteranges/i.test(headers['content-type'] ?? '')) return undefined;
  const range = parseContentRange(headers['content-range']);
  if (range === undefined) return undefined;
  const length = headers['content-length'];
  if (length !== undefined && Number(length) !== range.end - range.start + 1) return undefined;
  return range;
}

/**
 * RFC 9110 §14.1.2: the single byte range a Range header asks for, resolved against what is
 * stored; undefined unless it lies wholly inside `stored` (RFC 9111 §3.3: "the request is
 * partial and specifies a range wholly within the incomplete response"). Several ranges, other
 * units and anything unparsable are undefined: they are not answered from a partial entry.
 */
export function rangeWithin(
  header: string | undefined,
  stored: StoredRange,
): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/i.exec(header);
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    // suffix-byte-range-spec: the last N bytes, which needs the complete length.
    if (stored.complete === undefined) return undefined;
    const suffix = Number(match[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, stored.complete - suffix);
    end = stored.complete - 1;
  } else {
    start = Number(match[1]);
    const last = match[2] === '' ? undefined : Number(match[2]);
    const limit = stored.complete === undefined ? undefined : stored.complete - 1;
    if (last === undefined) {
      // "the remainder of the representation": known only with the complete length.
      if (limit === undefined) return undefined;
      end = limit;
    } else {
      end = limit === undefined ? last : Math.min(last, limit);
    }
    if (end < start) return undefined;
  }
  return start >= stored.start && end <= stored.end ? { start, end } : undefined;
}

/** A span of bytes to ask the origin for; `end` undefined is "to the end" (`bytes=start-`). */
export interface Span {
  start: number;
  end: number | undefined;
}

/** RFC 9110 §8.8.3: a strong entity tag (not `W/`); only those may combine parts (§15.3.7.3). */
export function isStrongEtag(etag: string | undefined): etag is string {
  return etag !== undefined && /^"[^"]*"$/.test(etag);
}

/**
 * RFC 9111 §3.4: what to ask the origin for so that, combined with the stored piece, a Range
 * request can be answered — the bytes of the request the piece lacks, as one span touching or
 * overlapping the piece. Undefined when nothing is missing (the range is inside the piece),
 * when the request cannot be resolved (several ranges, other units, a suffix or an
 * unsatisfiable start against an unknown or known complete length), or when it lies apart
 * from the piece (then there is nothing to combine: the response replaces the piece).
 */
export function missingSpan(header: string | undefined, stored: StoredRange): Span | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/i.exec(header);
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  const complete = stored.complete;
  let start: number;
  let end: number | undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (complete === undefined || suffix === 0) return undefined;
    start = Math.max(0, complete - suffix);
    end = complete - 1;
  } else {
    start = Number(match[1]);
    const last = match[2] === '' ? undefined : Number(match[2]);
    const limit = complete === undefined ? undefined : complete - 1;
    end = last === undefined ? limit : limit === undefined ? last : Math.min(last, limit);
    if (end !== undefined && end < start) return undefined;
  }
  if (complete !== undefined && start >= complete) return undefined;
  if (end !== undefined && start >= stored.start && end <= stored.end) return undefined;
  // Apart from the piece: no contiguous union.
  if (start > stored.end + 1 || (end !== undefined && end < stored.start - 1)) return undefined;
  if (start >= stored.start) return { start: stored.end + 1, end };
  if (end !== undefined && end <= stored.end) return { start, end: stored.start - 1 };
  return { start, end };
}

/** The Range field value asking for `span`. */
export function spanHeader(span: Span): string {
  return `bytes=${span.start}-${span.end ?? ''}`;
}

/**
 * RFC 9111 §3.4: the union of a stored piece and a new one of the same representation, when
 * they touch or overlap and agree on the complete length; undefined otherwise.
 */
export function combineRanges(stored: StoredRange, piece: StoredRange): StoredRange | undefined {
  if (stored.complete !== undefined && piece.complete !== undefined && stored.complete !== piece.complete)
    return undefined;
  if (piece.start > stored.end + 1 || piece.end < stored.start - 1) return undefined;
  const complete = stored.complete ?? piece.complete;
  const end = Math.max(stored.end, piece.end);
  if (complete !== undefined && end >= complete) return undefined;
  return { start: Math.min(stored.start, piece.start), end, complete };
}

/** Whether a piece is the whole representation: 0..complete-1 with a known complete length. */
export function coversWhole(range: StoredRange): boolean {
  return range.start === 0 && range.complete !== undefined && range.end === range.complete - 1;
}
