/**
 * An eviction pass reads the least recently used variants from the store's access-order index
 * a batch at a time: across several batches it removes exactly the least recently used ones,
 * those read again survive, and the index stays exact.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Evictor } from '../../../src/cache/eviction.ts';
import { CacheStore, entryCost } from '../../../src/cache/store.ts';
import { entryRecord } from '../../helpers/records.ts';
import { until } from '../../helpers/wait.ts';

const root = mkdtempSync(join(tmpdir(), 'strata-eviction-'));
after(() => rmSync(root, { recursive: true, force: true }));

const COUNT = 1300;
const urlOf = (i: number) =>
  `http://shop.test/catalogue/${'winter-collection-'.repeat(4)}item-${String(i).padStart(5, '0')}.html?ref=eviction`;

describe('an eviction pass', () => {
  it('removes exactly the least recently used variants over several batches; those read again stay', async () => {
    let clock = 1_000_000;
    const log = pino({ level: 'silent' });
    const store = new CacheStore({
      dir: join(root, 'lru'),
      maxSize: 1 << 30,
      chunkSize: 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: () => clock,
    });
    try {
      await store.write(() => {
        for (let i = 0; i < COUNT; i++) {
          clock++;
          store.commitEntryInTxn(
            urlOf(i),
            urlOf(i),
            entryRecord({ url: urlOf(i), size: 1000, bodyId: `b${i}` }),
          );
        }
      });
      // Every third of the first 900 is read again, newest last.
      const touched = new Set<number>();
      for (let i = 0; i < 900; i += 3) {
        clock++;
        store.touch(urlOf(i));
        touched.add(i);
      }
      await store.flushAccess();
      const cost = entryCost(entryRecord({ url: urlOf(0), size: 1000 }));
      const expectedOrder = [
        ...Array.from({ length: COUNT }, (_, i) => i).filter((i) => !touched.has(i)),
        ...touched,
      ];
      assert.deepEqual(
        store.evictionOrder().map((c) => c.id),
        expectedOrder.map(urlOf),
      );

      const evict = 700; // more than one batch of 500
      const bytes = store.usage().bytes;
      const evictor = new Evictor(store, { maxSize: bytes, log });
      await evictor.evictTo(bytes - evict * cost);
      const gone = new Set(expectedOrder.slice(0, evict));
      for (let i = 0; i < COUNT; i++) {
        assert.equal(store.lookup(urlOf(i), {}).kind, gone.has(i) ? 'miss' : 'found', `entry ${i}`);
      }
      assert.equal(store.usage().entries, COUNT - evict);
      assert.deepEqual(
        store.evictionOrder().map((c) => c.id),
        expectedOrder.slice(evict).map(urlOf),
      );
    } finally {
      await store.close();
    }
  });
});

describe('eviction and bodies in their grace period', () => {
  it('counts replaced bodies still on disk against maxSize, keeping at least half the low-water mark', async () => {
    const log = pino({ level: 'silent' });
    const maxSize = 400 * 1024;
    const store = new CacheStore({
      dir: join(root, 'grace'),
      maxSize,
      chunkSize: 4096,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: Date.now,
    });
    const record = (i: number, body: string) =>
      entryRecord({ url: urlOf(i), size: 4000, chunks: 1, chunkSize: 4096, bodyId: `${body}${i}` });
    try {
      await store.write(() => {
        for (let i = 0; i < 60; i++) store.commitEntryInTxn(urlOf(i), urlOf(i), record(i, 'old'));
      });
      const cost = entryCost(record(0, 'old'));
      const evictor = new Evictor(store, { maxSize, log });
      await evictor.runOnce();
      assert.equal(store.usage().entries, 60, 'under the high-water mark: nothing evicted');
      // 40 replaced by new bodies: the old ones wait out their grace period on disk.
      await store.write(() => {
        for (let i = 0; i < 40; i++) store.commitEntryInTxn(urlOf(i), urlOf(i), record(i, 'new'));
      });
      assert.equal(store.graceBytes, 40 * 4096);
      // 60 live entries (under the high-water mark alone) and 160 KiB waiting: evicted down to
      // the low-water mark less what waits (the evicted bodies wait in their turn).
      await evictor.runOnce();
      const { bytes } = store.usage();
      assert.ok(bytes <= maxSize * 0.8 - 40 * 4096 + cost, `${bytes} live bytes`);
      assert.ok(bytes >= maxSize * 0.4 - cost, 'at least half the low-water mark stays');
    } finally {
      await store.close();
    }
  });

  it('counts a small body waiting out its grace period by what it holds on disk, not a whole chunk: a cache of small objects keeps its low-water mark under churn', async () => {
    const log = pino({ level: 'silent' });
    const maxSize = 4 * 1024 * 1024;
    const store = new CacheStore({
      dir: join(root, 'grace-small'),
      maxSize,
      chunkSize: 256 * 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: Date.now,
    });
    // 1 KB bodies: one chunk each, far smaller than cache.chunkSize.
    const record = (i: number) =>
      entryRecord({ url: urlOf(i), size: 1000, chunks: 1, chunkSize: 256 * 1024, bodyId: `small${i}` });
    const cost = entryCost(record(0));
    const fill = async (from: number, to: number) => {
      await store.write(() => {
        for (let i = from; i < to; i++) store.commitEntryInTxn(urlOf(i), urlOf(i), record(i));
      });
    };
    try {
      const first = Math.ceil((maxSize * 0.95) / cost);
      await fill(0, first);
      const evictor = new Evictor(store, { maxSize, log });
      await evictor.runOnce();
      const evicted = first - store.usage().entries;
      assert.ok(evicted > 0, 'above the high-water mark: evicted');
      assert.ok(store.usage().bytes <= maxSize * 0.8, 'down to the low-water mark');
      // Each evicted body takes about its 1000 bytes in LMDB (a leaf page's share), not 256 KiB
      // (before: 256 KiB each, so the next pass took the cache down to 40% of maxSize).
      assert.ok(store.graceBytes <= evicted * 2048, `${store.graceBytes} grace bytes for ${evicted} bodies`);
      // More small objects arrive past the high-water mark while those bodies wait.
      const second = first + Math.ceil((maxSize * 0.15) / cost);
      await fill(first, second);
      await evictor.runOnce();
      const { bytes } = store.usage();
      assert.ok(bytes <= maxSize * 0.8, `${bytes} live bytes: the limit holds`);
      assert.ok(
        bytes >= maxSize * 0.8 - store.graceBytes - 2 * cost,
        `${bytes} live bytes kept of ${maxSize}, ${store.graceBytes} waiting`,
      );
      // The most recently stored survive.
      for (let i = second - 100; i < second; i++) assert.equal(store.lookup(urlOf(i), {}).kind, 'found');
    } finally {
      await store.close();
    }
  });
});

describe('eviction between passes', () => {
  it('starts a pass as soon as fills pass the high-water mark, not at the next interval', async () => {
    const log = pino({ level: 'silent' });
    const maxSize = 400 * 1024;
    const store = new CacheStore({
      dir: join(root, 'watch'),
      maxSize,
      chunkSize: 4096,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: Date.now,
    });
    const record = (i: number) =>
      entryRecord({ url: urlOf(i), size: 4000, chunks: 1, chunkSize: 4096, bodyId: `watched${i}` });
    // The interval alone would not come within the test: only the watch can start the pass.
    const evictor = new Evictor(store, { maxSize, log, intervalMs: 3_600_000, watchMs: 20 });
    evictor.start();
    try {
      await store.write(() => {
        for (let i = 0; i < 150; i++) store.commitEntryInTxn(urlOf(i), urlOf(i), record(i));
      });
      assert.ok(store.usage().bytes > maxSize, 'the fills went past maxSize');
      assert.ok(
        await until(() => store.usage().bytes <= maxSize * 0.8, 5000),
        `${store.usage().bytes} bytes stored, over ${maxSize * 0.8}`,
      );
    } finally {
      await evictor.stop();
      await store.close();
    }
  });
});
