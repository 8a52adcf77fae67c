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
