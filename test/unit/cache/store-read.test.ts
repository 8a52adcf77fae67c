import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { EntryRecord } from '../../../src/cache/record.ts';
import { CacheStore } from '../../../src/cache/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(): CacheStore {
  return new CacheStore({
    dir,
    maxSize: 1 << 30,
    chunkSize: 1024,
    memorySize: 1 << 20,
    memoryObjectSize: 1 << 16,
    log: pino({ level: 'silent' }),
    now: Date.now,
  });
}

function record(bodyId: string, lifetime: number): EntryRecord {
  return {
    kind: 'entry',
    v: 1,
    url: 'http://a.test/x',
    status: 200,
    headers: ['cache-control', `max-age=${lifetime}`],
    size: 0,
    bodyId,
    chunks: 0,
    chunkSize: 1024,
    etag: undefined,
    lastModified: undefined,
    contentEncoding: undefined,
    authOk: false,
    tags: [],
    vary: [],
    secondaryKey: '',
    fillStartedAt: 0,
    storedAt: 0,
    source: 'max-age',
    lifetime,
    responseTime: 0,
    initialAge: 0,
    swr: 0,
    sie: 0,
    noStale: false,
    noCache: false,
    invalidated: false,
  };
}

describe('reading records', () => {
  it('decodes unchanged bytes once and sees a replaced or removed record at the next read', async () => {
    const reader = open();
    const writer = reader;
    try {
      await writer.write(() => writer.entries.put('http://a.test/x', record('one', 60)));
      const first = reader.lookup('http://a.test/x', {});
      assert.equal(first.kind === 'found' && first.record.bodyId, 'one');
      const again = reader.lookup('http://a.test/x', {});
      assert.ok(
        first.kind === 'found' && again.kind === 'found' && first.record === again.record,
        'unchanged bytes are decoded once',
      );
      await writer.write(() => writer.entries.put('http://a.test/x', record('two', 120)));
      const second = reader.lookup('http://a.test/x', {});
      assert.equal(second.kind === 'found' && second.record.bodyId, 'two');
      assert.equal(second.kind === 'found' && second.record.lifetime, 120);
      await writer.write(() => writer.entries.remove('http://a.test/x'));
      assert.equal(reader.lookup('http://a.test/x', {}).kind, 'miss');
    } finally {
      await reader.close();
    }
  });
});
