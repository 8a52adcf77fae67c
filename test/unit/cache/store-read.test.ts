import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { EntryRecord } from '../../../src/cache/record.ts';
import { CacheStore } from '../../../src/cache/store.ts';
import { entryRecord } from '../../helpers/records.ts';

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
  return entryRecord({ bodyId, lifetime, headers: ['cache-control', `max-age=${lifetime}`] });
}

describe('reading records', () => {
  it('decodes unchanged bytes once and sees a replaced or removed record at the next read', async () => {
    const reader = open();
    const writer = reader;
    try {
      await writer.write(() =>
        writer.commitEntryInTxn('http://a.test/x', 'http://a.test/x', record('one', 60)),
      );
      const first = reader.lookup('http://a.test/x', {});
      assert.equal(first.kind === 'found' && first.record.bodyId, 'one');
      const again = reader.lookup('http://a.test/x', {});
      assert.ok(
        first.kind === 'found' && again.kind === 'found' && first.record === again.record,
        'unchanged bytes are decoded once',
      );
      await writer.write(() =>
        writer.commitEntryInTxn('http://a.test/x', 'http://a.test/x', record('two', 120)),
      );
      const second = reader.lookup('http://a.test/x', {});
      assert.equal(second.kind === 'found' && second.record.bodyId, 'two');
      assert.equal(second.kind === 'found' && second.record.lifetime, 120);
      await writer.write(() => writer.removeKeyInTxn('http://a.test/x'));
      assert.equal(reader.lookup('http://a.test/x', {}).kind, 'miss');
    } finally {
      await reader.close();
    }
  });
});
