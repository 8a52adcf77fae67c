/**
 * Conditional requests and byte ranges answered from a stored response (RFC 9110 §13, §14).
 * Pure: the stored response's validators and size come in, a decision goes out; no I/O and
 * no clock but the `now` passed in.
 */
import { parseHttpDate } from './http-date.ts';

/** What a stored response offers to a conditional or Range request (a stored record fits). */
export interface StoredValidators {
  status: number;
  etag?: string | undefined;
  lastModified?: string | undefined;
  /** When the response was received (ms). */
  responseTime: number;
  /** Length of the stored representation in bytes. */
  size: number;
}

/** The request fields a conditional or Range decision reads (request headers fit as they are). */
export interface ConditionalFields {
  'if-none-match'?: string | undefined;
  'if-modified-since'?: string | undefined;
  range?: string | undefined;
  'if-range'?: string | undefined;
}

/** Whether the request carries a precondition that a stored response may answer with 304. */
export function isConditional(fields: ConditionalFields): boolean {
  return fields['if-none-match'] !== undefined || fields['if-modified-since'] !== undefined;
}

/**
 * RFC 9110 §8.8.3.2 weak comparison of an entity tag against an If-None-Match list: "two
 * entity tags are equivalent if their opaque-tags match character-by-character, regardless of
 * either or both being tagged as 'weak'". `*` matches any current representation (§13.1.2): the
 * stored response compared here is one, with an entity tag or without.
 */
export function etagMatches(list: string, etag: string | undefined): boolean {
  if (list.trim() === '*') return true;
  if (etag === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  for (const candidate of entityTags(list)) if (candidate.replace(/^W\//, '') === opaque) return true;
  return false;
}

/**
 * The members of an entity-tag list, trimmed. A comma inside the quotes belongs to the tag
 * (§8.8.3: etagc includes %x2C, so `"v1,gzip"` is one tag); a backslash is an ordinary etagc,
 * not an escape.
 */
function entityTags(list: string): string[] {
  const tags: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i <= list.length; i++) {
    const char = list[i];
    if (char === '"') quoted = !quoted;
    else if (i === list.length || (char === ',' && !quoted)) {
      tags.push(list.slice(start, i).trim());
      start = i + 1;
    }
  }
  return tags;
}

/**
 * RFC 9110 §13.2.2: whether a GET or HEAD is answered 304 from the stored response.
 * If-None-Match is evaluated first; "a recipient MUST ignore If-Modified-Since if the request
 * contains an If-None-Match header field". Only a stored 200 is compared.
 */
export function notModified(
  method: string,
  fields: ConditionalFields,
  stored: StoredValidators,
  storedDate: string | undefined,
  now: number,
): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  if (stored.status !== 200) return false;
  const inm = fields['if-none-match'];
  if (inm !== undefined) return etagMatches(inm, stored.etag);
  const ims = fields['if-modified-since'];
  if (ims === undefined) return false;
  const since = parseHttpDate(ims, now);
  if (since === undefined) return false;
  // RFC 9111 §4.3.2: without Last-Modified, "the Date of the stored response, if present, or
  // the time it was received".
  const modified =
    parseHttpDate(stored.lastModified, now) ?? parseHttpDate(storedDate, now) ?? stored.responseTime;
  return modified <= since;
}

/** The single range to answer: bytes start..end (inclusive), 416, or the whole body (undefined). */
export type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * RFC 9110 §14.2: the one bytes range a GET asks of a stored 200. Several ranges, other units
 * and anything unparsable are answered with the whole body ("a server MAY ignore the Range
 * header field"); a first position at or past the end is unsatisfiable (§15.5.17).
 */
export function requestedRange(
  method: string,
  fields: ConditionalFields,
  stored: StoredValidators,
): ByteRange {
  const range = fields.range;
  if (range === undefined || method !== 'GET' || stored.status !== 200) return undefined;
  const ifRange = fields['if-range'];
  if (ifRange !== undefined && !ifRangeMatches(ifRange, stored)) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const size = stored.size;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    // An empty representation has no byte for a 206 to name (`bytes 0--1/0` is no range):
    // the whole of it, a 200 with no content, answers the suffix (§14.2: a server MAY ignore Range).
    if (size === 0) return undefined;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}

/**
 * RFC 9110 §13.1.5: If-Range holds when it is a strong entity tag equal to the stored one, or
 * a date exactly equal to the stored Last-Modified; "a recipient MUST ignore the Range header
 * field" otherwise (the whole body is sent).
 */
export function ifRangeMatches(
  ifRange: string,
  stored: Pick<StoredValidators, 'etag' | 'lastModified'>,
): boolean {
  const strongMatch = stored.etag !== undefined && !stored.etag.startsWith('W/') && ifRange === stored.etag;
  const dateMatch = stored.lastModified !== undefined && ifRange === stored.lastModified;
  return strongMatch || dateMatch;
}
