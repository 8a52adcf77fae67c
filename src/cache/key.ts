/**
 * The primary cache key: scheme + authority + path + query (RFC 9111 §2, §4).
 * The authority is lower-cased and its default port dropped; the path is kept as
 * received (its percent-encoding is significant); the query is kept or sorted per site.
 */
import { createHash } from 'node:crypto';

/** LMDB's key limit is 1978 bytes; longer URLs keep a readable prefix plus a digest. */
const MAX_KEY_LENGTH = 1000;
/** Characters a key may hold before its UTF-8 length has to be measured (3 bytes each at most). */
const SURELY_SHORT = Math.floor(MAX_KEY_LENGTH / 3);

/**
 * Between a primary key and the digest of a variant's secondary key. U+001F (unit separator):
 * it cannot occur in a URL (request targets and Host are refused with control characters),
 * sorts before every URL character (a key's variants sit right after it in key order), and,
 * unlike U+0000–U+0004, LMDB's ordered-binary key encoding writes and reads it unescaped at
 * every key length (it escapes low bytes only in strings under 64 characters and splits keys
 * at 0x00 on read: with `\0` a long variant key came back as an array).
 */
export const VARIANT_SEPARATOR = '\u001f';
/** The character after VARIANT_SEPARATOR: the exclusive end of a key's variant range. */
const AFTER_SEPARATOR = '\u0020';

export function primaryKey(
  scheme: 'http' | 'https',
  authority: string,
  target: string,
  sortQuery: boolean,
): string {
  const host = normalizeAuthority(scheme, authority);
  const path = sortQuery ? sortQueryString(target) : target;
  return `${scheme}://${host}${path}`;
}

export function normalizeAuthority(scheme: 'http' | 'https', authority: string): string {
  const host = authority.toLowerCase();
  if (scheme === 'http' && host.endsWith(':80')) return host.slice(0, -3);
  if (scheme === 'https' && host.endsWith(':443')) return host.slice(0, -4);
  return host;
}

function sortQueryString(target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const params = target
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .sort(byParamName);
  return `${target.slice(0, q)}?${params.join('&')}`;
}

/**
 * Query parameters in order of their names, a repeated name's values kept in the order they came:
 * an origin taking the first `page` answers `?page=6&page=2` and `?page=2&page=6` differently,
 * and sorted by value the two shared one key. Different names compare as whole strings (the
 * order keys had before).
 */
export function byParamName(a: string, b: string): number {
  const an = a.indexOf('=');
  const bn = b.indexOf('=');
  const nameA = an < 0 ? a : a.slice(0, an);
  const nameB = bn < 0 ? b : b.slice(0, bn);
  if (nameA === nameB) return 0;
  return a < b ? -1 : 1;
}

/** The longest stored id in UTF-8 bytes: a primary key (at most MAX_KEY_LENGTH), a separator and a variant digest. */
const LONGEST_STORED_ID = MAX_KEY_LENGTH + 1 + 22;

/**
 * Whether `text` is longer than any stored id, so that no id can start with it (a purge prefix,
 * a listing prefix or cursor): LMDB cannot seek to a key past its limit, and need not.
 */
export function beyondStoredKeys(text: string): boolean {
  return text.length > LONGEST_STORED_ID || Buffer.byteLength(text) > LONGEST_STORED_ID;
}

/** The LMDB key for a primary key: itself when short enough. */
export function storageKey(key: string): string {
  if (key.length <= SURELY_SHORT) return key;
  if (key.length <= MAX_KEY_LENGTH && Buffer.byteLength(key) <= MAX_KEY_LENGTH) return key;
  const digest = createHash('sha256').update(key).digest('base64url');
  let head = key.slice(0, MAX_KEY_LENGTH - 50);
  if (Buffer.byteLength(head) > MAX_KEY_LENGTH - 50) head = key.slice(0, SURELY_SHORT - 50);
  return `${head}#${digest}`;
}

/**
 * Digests of recent secondary keys. Every hit on an entry with Vary names its variant by this
 * digest; a SHA-256 per request was ~7% of such a hit's CPU (hit-compressed profile), while the
 * secondary keys a node sees are few (an Accept-Encoding bucket, a language). Bounded in count
 * and in key length; cleared when full (a client making up values only costs the hashing).
 */
const variantDigests = new Map<string, string>();
const VARIANT_DIGESTS_MAX = 4096;
const VARIANT_DIGEST_KEY_MAX = 256;

/** The LMDB key of one variant of a primary key (separator sorts before any URL character). */
export function variantKey(storage: string, secondary: string): string {
  if (secondary === '') return storage;
  let digest = variantDigests.get(secondary);
  if (digest === undefined) {
    digest = createHash('sha256').update(secondary).digest('base64url').slice(0, 22);
    if (secondary.length <= VARIANT_DIGEST_KEY_MAX) {
      if (variantDigests.size >= VARIANT_DIGESTS_MAX) variantDigests.clear();
      variantDigests.set(secondary, digest);
    }
  }
  return `${storage}${VARIANT_SEPARATOR}${digest}`;
}

/** Bounds of the LMDB range holding every variant of a primary key. */
export function variantRange(storage: string): { start: string; end: string } {
  return { start: `${storage}${VARIANT_SEPARATOR}`, end: `${storage}${AFTER_SEPARATOR}` };
}

/** The primary key part of a variant key (the key itself when it names no variant). */
export function primaryOf(id: string): string {
  const separator = id.indexOf(VARIANT_SEPARATOR);
  return separator < 0 ? id : id.slice(0, separator);
}
