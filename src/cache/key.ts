/**
 * The primary cache key: scheme + authority + path + query (RFC 9111 §2, §4).
 * The authority is lower-cased and its default port dropped; the path is kept as
 * received (its percent-encoding is significant); the query is kept or sorted per site.
 */
import { createHash } from 'node:crypto';

/** LMDB's key limit is 1978 bytes; longer URLs keep a readable prefix plus a digest. */
const MAX_KEY_LENGTH = 1000;

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
    .sort();
  return `${target.slice(0, q)}?${params.join('&')}`;
}

/** The LMDB key for a primary key: itself when short enough. */
export function storageKey(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key;
  const digest = createHash('sha256').update(key).digest('base64url');
  return `${key.slice(0, MAX_KEY_LENGTH - 50)}#${digest}`;
}

/** The LMDB key of one variant of a primary key (separator sorts before any URL character). */
export function variantKey(storage: string, secondary: string): string {
  if (secondary === '') return storage;
  return `${storage}\u0000${createHash('sha256').update(secondary).digest('base64url').slice(0, 22)}`;
}

/** Bounds of the LMDB range holding every variant of a primary key. */
export function variantRange(storage: string): { start: string; end: string } {
  return { start: `${storage}\u0000`, end: `${storage}\u0001` };
}
