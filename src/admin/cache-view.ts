/**
 * Read-only views of the store for operators: what is stored for a URL (every variant,
 * its freshness, tags and size), listings by prefix or tag, and a summary. Served by the
 * admin API and, on a stopped node's cache directory, by the CLI.
 */
import { beyondStoredKeys } from '../cache/key.ts';
import { currentAge, remainingFreshness } from '../cache/policy/reuse.ts';
import { type EntryRecord, storedHeader } from '../cache/record.ts';
import type { CacheStore } from '../cache/store.ts';
import type { PurgeLog, QuarantinedPurge } from '../purge/purge-log.ts';
import { type KeyedTarget, keyOfPrefix, type SortQuery, storageKeyOfUrl } from '../purge/targets.ts';

export type Freshness = 'fresh' | 'stale' | 'invalidated';

export interface VariantView {
  /** The variant's LMDB key: the storage key, plus U+001F and a hash of the Vary values. */
  id: string;
  url: string;
  /** Normalized values of the Vary fields this variant was stored under ('' when none). */
  secondaryKey: string;
  vary: string[];
  status: number;
  size: number;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  etag: string | undefined;
  lastModified: string | undefined;
  tags: string[];
  state: Freshness;
  /** Age in seconds (RFC 9111 §4.2.3). */
  age: number;
  /** Seconds of freshness left (negative: stale by that much). */
  ttl: number;
  /** Seconds it may be served stale while revalidating, and when the origin fails. */
  staleWhileRevalidate: number;
  staleIfError: number;
  storedAt: string;
}

export interface InspectView {
  url: string;
  key: string | undefined;
  variants: VariantView[];
}

export interface ListView {
  entries: VariantView[];
  /** Give as `after` to continue the listing; absent at the end. */
  next: string | undefined;
}

export const LIST_LIMIT = 100;
export const LIST_MAX = 10_000;

export function variantView(id: string, record: EntryRecord, now: number): VariantView {
  const ttl = Math.round(remainingFreshness(record, now));
  return {
    id,
    url: record.url,
    secondaryKey: record.secondaryKey,
    vary: record.vary,
    status: record.status,
    size: record.size,
    contentType: storedHeader(record, 'content-type'),
    contentEncoding: record.contentEncoding,
    etag: record.etag,
    lastModified: record.lastModified,
    tags: record.tags,
    state: record.invalidated ? 'invalidated' : ttl > 0 ? 'fresh' : 'stale',
    age: currentAge(record, now),
    ttl,
    staleWhileRevalidate: record.swr,
    staleIfError: record.sie,
    storedAt: new Date(record.storedAt).toISOString(),
  };
}

/** Every variant stored for an absolute URL (under the key its site's rules make of it, `keyed`). */
export function inspectUrl(
  store: CacheStore,
  url: string,
  sortQuery: SortQuery,
  now: number,
  keyed?: KeyedTarget,
): InspectView {
  const key = storageKeyOfUrl(url, sortQuery, keyed);
  if (key === undefined) return { url, key, variants: [] };
  const current = store.current(key);
  const variants: VariantView[] = [];
  if (current?.kind === 'entry') variants.push(variantView(key, current, now));
  if (current?.kind === 'vary') {
    for (const { id, record } of store.variants(key)) variants.push(variantView(id, record, now));
  }
  return { url, key, variants };
}

export interface ListOptions {
  prefix?: string | undefined;
  tag?: string | undefined;
  limit?: number | undefined;
  after?: string | undefined;
}

/** Stored variants in key order (under a prefix), or under a tag. */
export function listEntries(store: CacheStore, options: ListOptions, now: number): ListView {
  const limit = Math.max(1, Math.min(LIST_MAX, options.limit ?? LIST_LIMIT));
  const entries: VariantView[] = [];
  const after = options.after;
  if (options.tag !== undefined) {
    for (const id of store.tagged(options.tag, { after, limit: limit + 1 })) {
      const value = store.current(id);
      if (value?.kind === 'entry') entries.push(variantView(id, value, now));
    }
  } else {
    const prefix =
      options.prefix === undefined || options.prefix === '' ? '' : (keyOfPrefix(options.prefix) ?? '');
    // Longer than any stored id: nothing starts with it (and LMDB cannot seek to it).
    if (beyondStoredKeys(prefix)) return { entries: [], next: undefined };
    for (const { id, value } of store.records(after === undefined ? { start: prefix } : { after })) {
      if (!id.startsWith(prefix) || entries.length > limit) break;
      if (value.kind === 'entry') entries.push(variantView(id, value, now));
    }
  }
  const more = entries.length > limit;
  if (more) entries.length = limit;
  return { entries, next: more ? entries[entries.length - 1]!.id : undefined };
}

export interface StatsView {
  store: { bytes: number; entries: number; capacity: number };
  purge: {
    /** Last sequence in this node's purge log. */
    sequence: number;
    /** Oldest sequence still in the log. */
    oldest: number | undefined;
    peers: Array<{ url: string; delivered: number; pending: number }>;
    /** Purges that could not be applied and were set aside at startup (docs/operations.md). */
    quarantined: QuarantinedPurge[];
  };
}

/** The part of /stats that the store alone can tell (also offline). */
export function storeStats(store: CacheStore, log: PurgeLog, capacity: number): StatsView {
  const usage = store.usage();
  const sequence = log.sequence;
  return {
    store: { bytes: usage.bytes, entries: usage.entries, capacity },
    purge: {
      sequence,
      oldest: log.oldest,
      peers: log.peers().map(({ peer, delivered }) => ({
        url: peer,
        delivered,
        pending: Math.max(0, sequence - delivered),
      })),
      quarantined: log.quarantined(),
    },
  };
}
