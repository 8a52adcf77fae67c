/**
 * Vary: secondary cache keys (RFC 9111 §4.1). Field values are normalized so that
 * requests which mean the same thing select the same variant.
 */
import { negotiateEncoding } from './accept-encoding.ts';

/** Field names (lower case, sorted, unique), '*' when Vary contains *, or [] for none. */
export function parseVary(value: string | undefined): string[] | '*' {
  if (value === undefined) return [];
  const names = new Set<string>();
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '*') return '*';
    if (name !== '') names.add(name);
  }
  return [...names].sort();
}

/** Fields whose values are lists of case-insensitive tokens where order carries no meaning. */
const UNORDERED_TOKEN_LISTS: ReadonlySet<string> = new Set(['accept-encoding']);
const CASE_INSENSITIVE: ReadonlySet<string> = new Set([
  'accept-encoding',
  'accept',
  'accept-charset',
  'accept-language',
]);

/**
 * §4.1: "The selecting header fields from two requests are defined to match if and only if
 * those in the first request can be transformed to those in the second request by applying
 * any of the following: adding or removing whitespace, where allowed in the field's syntax;
 * combining multiple field lines with the same field name; normalizing both header field
 * values in a way that is known to have identical semantics, according to the field's
 * specification (e.g., reordering field values when order is not significant; case-
 * normalization, where values are defined to be case-insensitive)."
 */
export function normalizeFieldValue(name: string, value: string | string[] | undefined): string {
  if (name === 'accept-encoding') return encodingKey(value);
  if (value === undefined) return '\u0000';
  return normalizeList(name, value);
}

/**
 * Accept-Encoding selects by the coding the node would answer with (RFC 9110 §12.5.3), not by
 * its spelling: `gzip, deflate, br` and `gzip, br` are one variant. Fills forward the bucket
 * (not the client's field) to the origin, so whatever the origin answers suits every request
 * in the bucket. A field nothing the node knows satisfies keeps its own normalized spelling.
 */
/** Accept-Encoding values seen → their key: clients send a handful of spellings, per hit. */
const encodingKeys = new Map<string, string>();
const ENCODING_KEYS_MAX = 1024;
/** Longer values are worked out each time (the table stays under a MiB). */
const ENCODING_KEY_LENGTH_MAX = 256;

function encodingKey(value: string | string[] | undefined): string {
  if (typeof value === 'string' && value.length <= ENCODING_KEY_LENGTH_MAX) {
    const known = encodingKeys.get(value);
    if (known !== undefined) return known;
    const key = negotiatedKey(value);
    if (encodingKeys.size >= ENCODING_KEYS_MAX) encodingKeys.clear();
    encodingKeys.set(value, key);
    return key;
  }
  return negotiatedKey(value);
}

function negotiatedKey(value: string | string[] | undefined): string {
  const bucket = negotiateEncoding(value);
  if (bucket !== null) return bucket;
  return `none:${normalizeList('accept-encoding', value ?? '')}`;
}

function normalizeList(name: string, value: string | string[]): string {
  const joined = Array.isArray(value) ? value.join(',') : value;
  let parts = joined
    .split(',')
    .map((part) =>
      part
        .replace(/\s*;\s*/g, ';')
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter(Boolean);
  if (CASE_INSENSITIVE.has(name)) parts = parts.map((part) => part.toLowerCase());
  if (UNORDERED_TOKEN_LISTS.has(name)) parts.sort();
  if (name === 'accept-language') return normalizeAcceptLanguage(parts);
  return parts.join(',');
}

const QVALUE = /^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Accept-Language (RFC 9110 §12.5.4, §12.4.2), already split, trimmed and lower-cased: the
 * ranges ordered by weight, highest first, and each weight written as a number (`q=1.0`, `q=1`
 * and none are one weight, `1`, omitted), so `de, en;q=0.5` and `en;q=0.50, de;q=1.0` share a
 * variant. Ranges of equal weight keep the client's order: §12.5.4 notes that recipients may
 * take the listed order as priority among equal weights, so `en, de` and `de, en` may select
 * different representations (§4.1 merges only values known to mean the same). A list with
 * anything else in it (a malformed weight, a parameter) is left as it is.
 */
export function normalizeAcceptLanguage(parts: readonly string[]): string {
  const ranges: Array<{ tag: string; q: number }> = [];
  for (const part of parts) {
    const semicolon = part.indexOf(';');
    if (semicolon === -1) {
      ranges.push({ tag: part, q: 1 });
      continue;
    }
    const weight = QVALUE.exec(part.slice(semicolon + 1));
    if (weight === null) return parts.join(',');
    ranges.push({ tag: part.slice(0, semicolon), q: Number(weight[1]) });
  }
  // Stable: ranges of equal weight keep the order the client listed them in.
  ranges.sort((a, b) => b.q - a.q);
  return ranges.map((range) => (range.q === 1 ? range.tag : `${range.tag};q=${range.q}`)).join(',');
}

/** The secondary key of a request for the given Vary field names. */
export function secondaryKey(
  fields: readonly string[],
  headers: Record<string, string | string[] | undefined>,
): string {
  let key = '';
  for (const field of fields) key += `${field}=${normalizeFieldValue(field, headers[field])}\n`;
  return key;
}
