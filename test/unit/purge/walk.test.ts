import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { META } from '../../../src/cache/meta-keys.ts';
import type { EntryRecord } from '../../../src/cache/record.ts';
import { CacheStore } from '../../../src/cache/store.ts';
import { PurgeService } from '../../../src/purge/service.ts';
import { entryRecord } from '../../helpers/records.ts';

const RECORD: EntryRecord = entryRecord({ url: '', size: 1, bodyId: '', chunks: 1 });

describe('PurgeService on a store', () => {
  let dir: string;
  let store: CacheStore;
  let service: PurgeService;

  const seed = (urls: string[], tags: string[]) =>
    store.write(() => {
      for (const url of urls) store.commitEntryInTxn(url, url, { ...RECORD, url, bodyId: url, tags });
    });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-purge-unit-'));
    store = new CacheStore({
      dir,
      maxSize: 1024 ** 3,
      chunkSize: 262_144,
      memorySize: 0,
      memoryObjectSize: 0,
      log: pino({ level: 'silent' }),
      now: () => 0,
    });
    service = new PurgeService({
      store,
      log: pino({ level: 'silent' }),
      sortQuery: () => false,
      batchSize: 100,
      now: () => 0,
    });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('purges a large tag in many short transactions, serving the event loop between them', async () => {
    const urls = Array.from({ length: 1050 }, (_, i) => `http://big.test/${String(i).padStart(5, '0')}`);
    await seed(urls, ['big']);
    const seqBefore = (store.readMeta(META.purgeSeq) as number | undefined) ?? 0;
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const result = await service.purge({ urls: [], prefixes: [], tags: ['big'], all: false, soft: false });
    clearInterval(ticker);
    assert.equal(result.purged, 1050);
    assert.equal([...store.tagged('big')].length, 0);
    // Every batch bumps the race-guard counter: at least ceil(1050 / 100) transactions.
    assert.ok((store.readMeta(META.purgeSeq) as number) - seqBefore >= 11);
    assert.ok(turns >= 5, `the event loop ran ${turns} timers during the purge`);
  });

  it('soft purge by prefix marks every key under it stale and skips the rest', async () => {
    await seed(['http://p.test/a/1', 'http://p.test/a/2', 'http://p.test/ab', 'http://p.test/b'], []);
    const result = await service.purge({
      urls: [],
      prefixes: ['HTTP://P.test:80/a/'],
      tags: [],
      all: false,
      soft: true,
    });
    assert.equal(result.purged, 2);
    const invalidated = (url: string) => {
      const value = store.current(url);
      return value?.kind === 'entry' && value.invalidated;
    };
    assert.deepEqual(
      ['http://p.test/a/1', 'http://p.test/a/2', 'http://p.test/ab', 'http://p.test/b'].map(invalidated),
      [true, true, false, false],
    );
    const again = await service.purge({
      urls: [],
      prefixes: ['http://p.test/a/'],
      tags: [],
      all: false,
      soft: true,
    });
    assert.equal(again.purged, 0, 'already stale entries are not counted twice');
    assert.equal(again.sequence, result.sequence + 1);
  });

  it('logs nothing and marks no delivery received when its first step throws: the retry applies it', async () => {
    const urls = Array.from(
      { length: 3 },
      (_, i) => `http://shop.test/catalogue/${'deep-path-'.repeat(10)}item-${i}.json?colour=navy`,
    );
    await seed(urls, ['broken']);
    const unappliedBefore = service.log.unapplied().length;
    const sequenceBefore = service.log.sequence;
    const forwarded = { node: 'peer-node-id', sequence: 7, path: ['peer-node-id'] };
    const command = { urls: [], prefixes: [], tags: ['broken'], all: false, soft: false };
    // A fault inside the walk's first step (a damaged index or record the walk does not expect).
    const remove = store.removeEvictedInTxn.bind(store);
    let faults = 1;
    store.removeEvictedInTxn = (id: string) => {
      if (faults-- > 0) throw new Error('damaged record');
      return remove(id);
    };
    try {
      await assert.rejects(service.purge(command, forwarded), /damaged record/);
    } finally {
      store.removeEvictedInTxn = remove;
    }
    assert.equal(service.log.unapplied().length, unappliedBefore, 'no logged purge left unapplied');
    assert.equal(service.log.sequence, sequenceBefore, 'nothing logged');
    assert.equal(
      store.readMeta(`${META.purgeFromPrefix}peer-node-id`),
      undefined,
      'delivery not marked received',
    );
    // The sender delivers it again: applied, not skipped as already received.
    const retried = await service.purge(command, forwarded);
    assert.equal(retried.purged, 3);
    assert.equal(retried.sequence, sequenceBefore + 1);
    assert.equal([...store.tagged('broken')].length, 0);
    assert.equal(store.readMeta(`${META.purgeFromPrefix}peer-node-id`), 7);
  });
});
