/** Stored-record fixtures for unit tests: one place that knows every field a record has. */
import type { StoredFreshness } from '../../src/cache/policy/reuse.ts';
import type { EntryRecord } from '../../src/cache/record.ts';

/** Fresh for 60 s from time 0, no stale windows, no directives that force validation. */
export function freshness(overrides: Partial<StoredFreshness> = {}): StoredFreshness {
  return {
    lifetime: 60,
    responseTime: 0,
    initialAge: 0,
    swr: 0,
    sie: 0,
    noStale: false,
    noCache: false,
    invalidated: false,
    ...overrides,
  };
}

/** A complete 200 entry for `url` with an empty body unless told otherwise. */
export function entryRecord(overrides: Partial<EntryRecord> = {}): EntryRecord {
  return {
    kind: 'entry',
    v: 1,
    url: 'http://a.test/x',
    status: 200,
    headers: [],
    size: 0,
    bodyId: 'body',
    chunks: 0,
    chunkSize: 262_144,
    etag: undefined,
    lastModified: undefined,
    contentEncoding: undefined,
    authOk: false,
    tags: [],
    vary: [],
    secondaryKey: '',
    storedAt: 0,
    source: 'max-age',
    ...freshness(),
    ...overrides,
  };
}
