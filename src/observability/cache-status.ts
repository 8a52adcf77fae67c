/**
 * Cache-Status (RFC 9211): one entry for this cache, appended to what tiers
 * closer to the origin wrote.
 */

export type ForwardReason =
  | 'miss'
  | 'stale'
  | 'uri-miss'
  | 'vary-miss'
  | 'request'
  | 'method'
  | 'bypass'
  /** RFC 9211 §2.2: a partial response was stored and more of it was fetched (RFC 9111 §3.4). */
  | 'partial';

export interface CacheStatusParts {
  hit?: boolean;
  fwd?: ForwardReason;
  fwdStatus?: number;
  ttl?: number;
  stored?: boolean;
  collapsed?: boolean;
  key?: string;
  detail?: string;
  /** The site rules that decided (named in detail, after any other detail). */
  rule?: string | undefined;
}

/**
 * The cache's name as a member of the list (RFC 9211 §2: an sf-token or an sf-string). proxy.via
 * allows a name starting with a digit, `.`, `_` or `-`, which no token may: it goes quoted.
 */
export function cacheName(name: string): string {
  const first = name.charCodeAt(0) | 0x20; // lower-cases an ASCII letter
  return first >= 0x61 && first <= 0x7a ? name : `"${name}"`;
}

/** RFC 9211 §2: a List of cache entries; parameters after the cache name. */
export function formatCacheStatus(name: string, parts: CacheStatusParts): string {
  let value = cacheName(name);
  if (parts.hit) value += '; hit';
  if (parts.fwd) value += `; fwd=${parts.fwd}`;
  if (parts.fwdStatus !== undefined) value += `; fwd-status=${parts.fwdStatus}`;
  if (parts.ttl !== undefined) value += `; ttl=${Math.floor(parts.ttl)}`;
  if (parts.stored) value += '; stored';
  if (parts.collapsed) value += '; collapsed';
  const detail =
    parts.rule === undefined || parts.rule === parts.detail
      ? parts.detail
      : parts.detail
        ? `${parts.detail} ${parts.rule}`
        : parts.rule;
  if (detail)
    value += `; detail=${/^[A-Za-z*][A-Za-z0-9_\-.:/*]*$/.test(detail) ? detail : JSON.stringify(detail)}`;
  return value;
}

/**
 * The detail of a request refused before (or instead of) any cache handling: the error code's
 * own words (`EDGE_ERR_CLIENT_RATE_LIMITED` → `rate-limited`, docs/errors.md).
 */
export function refusalDetail(code: string): string {
  return code
    .replace(/^EDGE_ERR_(?:CLIENT_)?/, '')
    .toLowerCase()
    .replaceAll('_', '-');
}

/** Appends our entry to a Cache-Status received from the origin (a parent tier). */
export function appendCacheStatus(received: string | undefined, ours: string): string {
  return received ? `${received}, ${ours}` : ours;
}

/**
 * Appends this node's member to a flat header list as one Cache-Status field: the members the
 * list already holds (a parent tier's, RFC 9211: origin-most first) are taken out and put
 * before ours, so a client sees each member once, in one field.
 */
export function pushCacheStatus(list: string[], ours: string): void {
  let received: string | undefined;
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (list[i]!.toLowerCase() !== 'cache-status') continue;
    received = received === undefined ? list[i + 1]! : `${list[i + 1]!}, ${received}`;
    list.splice(i, 2);
  }
  list.push('Cache-Status', appendCacheStatus(received, ours));
}
