/**
 * From what an operator writes to what the store is keyed by. A purge URL is absolute as
 * the client sees it (scheme, Host, path, query); it maps to the same primary key the
 * hash phase computes for that request: authority lower-cased, default port dropped,
 * path and query kept byte for byte (sorted when the site sorts its query).
 *
 * The scheme of a key is the listener's (http or https, docs/tls.md): a site served on both
 * has two entries per URL. A purge by URL or prefix covers both, whichever scheme the operator
 * typed, so that `https://…` purges what plain HTTP clients get too (`bothSchemes`).
 */
import type { FillPurge } from '../cache/collapse.ts';
import { normalizeAuthority, primaryKey, storageKey } from '../cache/key.ts';
import { canonicalAuthority, canonicalTarget } from '../http/request-target.ts';
import { hostKey, type PurgeCommand } from './command.ts';

/** Whether the site answering `host` sorts query parameters in its cache key. */
export type SortQuery = (host: string) => boolean;

/**
 * The target as the site answering `host` keys a GET of it: its query filtered and sorted by the
 * site's rules (cacheKey.query), else unchanged. A URL purged as clients request it
 * (`/api/list?b=2&a=1&utm_source=x`) then finds the key those requests were stored under.
 */
export type KeyedTarget = (host: string, target: string) => string;

interface SplitUrl {
  scheme: 'http' | 'https';
  authority: string;
  /** Path and query, without the fragment ('' when absent). */
  rest: string;
}

/**
 * Scheme, authority and the rest, spelled as the receive phase spells a request's: the authority
 * canonical (lower case, no trailing dot, no default port however written: `:080` is 80), no
 * fragment, no empty query — so a purge matches what an operator types.
 */
function split(url: string): SplitUrl | undefined {
  const match = /^(https?):\/\/([^/?#]+)([^#]*)/i.exec(url);
  if (!match) return undefined;
  const scheme = match[1]!.toLowerCase() as 'http' | 'https';
  const authority = canonicalAuthority(match[2]!, scheme) ?? normalizeAuthority(scheme, match[2]!);
  return { scheme, authority, rest: canonicalTarget(match[3]!) };
}

/** The primary key of an absolute URL (its query as `keyed` says), or undefined when it is not one. */
export function keyOfUrl(url: string, sortQuery: SortQuery, keyed?: KeyedTarget): string | undefined {
  const parts = split(url);
  if (!parts) return undefined;
  const rest = parts.rest === '' ? '/' : parts.rest.startsWith('?') ? `/${parts.rest}` : parts.rest;
  const target = keyed === undefined ? rest : keyed(parts.authority, rest);
  return primaryKey(parts.scheme, parts.authority, target, sortQuery(parts.authority));
}

/** The LMDB key of an absolute URL (what `entries` is keyed by). */
export function storageKeyOfUrl(url: string, sortQuery: SortQuery, keyed?: KeyedTarget): string | undefined {
  const key = keyOfUrl(url, sortQuery, keyed);
  return key === undefined ? undefined : storageKey(key);
}

/**
 * A prefix in cache key form: scheme and authority normalized like a key, the rest kept
 * as written (a prefix may end mid-segment: `https://example.com/img/2024-`). A prefix of
 * scheme and host alone is that host's root, `https://example.com/`: as plain text it would
 * also match `https://example.com.au/…` and `https://example.com:8443/…`.
 */
export function keyOfPrefix(prefix: string): string | undefined {
  const parts = split(prefix);
  if (!parts) return undefined;
  const rest = parts.rest === '' || parts.rest.startsWith('?') ? `/${parts.rest}` : parts.rest;
  return `${parts.scheme}://${parts.authority}${rest}`;
}

/** The URL (or prefix) as typed and with the other scheme, the rest unchanged. */
export function bothSchemes(url: string): string[] {
  const match = /^(https?):\/\//i.exec(url);
  if (!match) return [url];
  const other = match[1]!.toLowerCase() === 'https' ? 'http' : 'https';
  return [url, `${other}://${url.slice(match[0].length)}`];
}

/**
 * The key prefixes holding everything stored for a host, both schemes: `http://h/` and
 * `https://h/`, and, for a host given without a port, every other port too (`http://h:`).
 * With a port, that port only (spelled as keys spell it: no port when it is the scheme's default).
 */
export function hostPrefixes(host: { name: string; port: number | undefined }): string[] {
  const { name, port } = host;
  if (port === undefined) {
    return [`http://${name}/`, `https://${name}/`, `http://${name}:`, `https://${name}:`];
  }
  return [
    `http://${port === 80 ? name : `${name}:${port}`}/`,
    `https://${port === 443 ? name : `${name}:${port}`}/`,
  ];
}

/**
 * Storage keys, key prefixes and tags a purge covers (`all`: one empty prefix). A URL covers its
 * key as written and, with `keyed`, the key its site's rules make of it.
 */
export function fillTargets(command: PurgeCommand, sortQuery: SortQuery, keyed?: KeyedTarget): FillPurge {
  if (command.all) return { all: true, keys: [], prefixes: [''], tags: [] };
  const keys = new Set<string>();
  for (const url of command.urls.flatMap(bothSchemes)) {
    const key = storageKeyOfUrl(url, sortQuery);
    if (key !== undefined) keys.add(key);
    const ruled = keyed === undefined ? undefined : storageKeyOfUrl(url, sortQuery, keyed);
    if (ruled !== undefined) keys.add(ruled);
  }
  const prefixes = new Set<string>();
  for (const prefix of command.prefixes.flatMap(bothSchemes)) {
    const key = keyOfPrefix(prefix);
    if (key !== undefined) prefixes.add(key);
  }
  for (const host of command.hosts ?? []) {
    const parsed = hostKey(host);
    if (parsed !== undefined) for (const prefix of hostPrefixes(parsed)) prefixes.add(prefix);
  }
  return { all: false, keys: [...keys], prefixes: [...prefixes], tags: [...new Set(command.tags)] };
}
