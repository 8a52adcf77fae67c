/**
 * The cache store's contract, as a suite any store implementation runs (undici's
 * `cacheStoreTests` pattern): `storeContractTests(name, factory)` registers the tests, the
 * factory opens a store on a directory. What a store promises:
 * - an entry becomes visible only with the commit of its last chunk;
 * - a fill whose key was purged after it began is not inserted (the purge-generation race);
 * - storing a variant again replaces it (one record, one body, its cost counted once);
 * - the tag index is exact: a tag purge removes exactly the tagged variants, a replaced
 *   variant's old tags no longer name it;
 * - a reopened store has everything back, eviction order included;
 * - the eviction order is an index kept exact: stored, replaced, touched and removed variants
 *   move in it or leave it, read a page at a time in least-recently-used order;
 * - counts for purge progress (tagged, keys under a prefix) match what a walk visits;
 * - at most maxVariants variants per primary key, the least recently used going first;
 * - damaged chunks and records of an unknown version read as misses, never exceptions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { variantKey } from '../../src/cache/key.ts';
import { secondaryKey } from '../../src/cache/policy/vary.ts';
import type { EntryRecord } from '../../src/cache/record.ts';
import type { CacheStore } from '../../src/cache/store.ts';
import { isEdgeError } from '../../src/errors.ts';
import { PurgeWalk } from '../../src/purge/walk.ts';
import { withRawStore } from './raw-lmdb.ts';
import { entryRecord } from './records.ts';

export interface ContractOptions {
  /** Clock for access times (ms): the suite moves it. */
  now: () => number;
  maxVariants?: number;
}

/** Opens a store on `dir` (the same directory again for a warm reopen). */
export type StoreFactory = (dir: string, options: ContractOptions) => CacheStore;

const LONG = `http://contract.test/${'assets/'.repeat(16)}app.js?v=${'9'.repeat(40)}`;
const SHORT = 'http://c.test/x';
const CHUNK = 1024;

/** The Vary fields and secondary key of a variant by Accept-Language. */
function language(value: string): { vary: string[]; secondaryKey: string } {
  return {
    vary: ['accept-language'],
    secondaryKey: secondaryKey(['accept-language'], { 'accept-language': value }),
  };
}

/** The id of the variant of `storage` for one Accept-Language. */
function variantOf(storage: string, value: string): string {
  return variantKey(storage, language(value).secondaryKey);
}

export function storeContractTests(name: string, factory: StoreFactory): void {
  const root = mkdtempSync(join(tmpdir(), 'strata-contract-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let dirs = 0;
  let time = 1_000_000;
  const options: ContractOptions = { now: () => time };
  const fresh = (extra: Partial<ContractOptions> = {}) => {
    const dir = join(root, `s${++dirs}`);
    return { dir, store: factory(dir, { ...options, ...extra }) };
  };

  /** Writes a body through the store's writer, `chunks` full chunks plus a last partial one. */
  async function fill(
    store: CacheStore,
    storage: string,
    record: Partial<EntryRecord>,
    body: Buffer,
    stillWanted?: () => boolean,
  ): Promise<string> {
    const writer = store.createWriter(storage);
    let offset = 0;
    for (; offset + CHUNK < body.length; offset += CHUNK)
      await writer.write(body.subarray(offset, offset + CHUNK));
    const secondary = record.secondaryKey ?? '';
    const id = (record.vary?.length ?? 0) > 0 ? variantKey(storage, secondary) : storage;
    const {
      bodyId: _b,
      chunks: _c,
      size: _s,
      ...rest
    } = entryRecord({ url: storage, chunkSize: CHUNK, ...record });
    return writer.commit(id, rest, body.subarray(offset), stillWanted);
  }

  function bodyOf(store: CacheStore, record: EntryRecord): Buffer {
    const parts: Buffer[] = [];
    for (let i = 0; i < record.chunks; i++) {
      const chunk = store.chunk(record.bodyId, i);
      assert.ok(chunk, `chunk ${i} of ${record.bodyId} reads back`);
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }

  function found(store: CacheStore, storage: string, headers: Record<string, string> = {}): EntryRecord {
    const result = store.lookup(storage, headers);
    assert.equal(result.kind, 'found', `${storage} is stored`);
    return (result as Extract<typeof result, { kind: 'found' }>).record;
  }

  const bytes = (n: number, seed: number) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

  describe(`cache store contract: ${name}`, () => {
    it('makes an entry visible only when its last chunk commits, never before', async () => {
      const { store } = fresh();
      try {
        for (const storage of [SHORT, LONG]) {
          const writer = store.createWriter(storage);
          await writer.write(bytes(CHUNK, 1));
          await writer.write(bytes(CHUNK, 2));
          assert.equal(store.lookup(storage, {}).kind, 'miss', 'committed chunks alone are not an entry');
          const {
            bodyId: _b,
            chunks: _c,
            size: _s,
            ...rest
          } = entryRecord({ url: storage, chunkSize: CHUNK });
          assert.equal(await writer.commit(storage, rest, bytes(10, 3)), 'stored');
          const record = found(store, storage);
          assert.equal(record.size, 2 * CHUNK + 10);
          assert.deepEqual(
            bodyOf(store, record),
            Buffer.concat([bytes(CHUNK, 1), bytes(CHUNK, 2), bytes(10, 3)]),
          );
        }
      } finally {
        await store.close();
      }
    });

    it('does not insert a fill whose key was purged or invalidated after the fill began', async () => {
      const { store } = fresh();
      try {
        for (const purge of [
          () => store.write(() => store.bumpPurgeGenerationInTxn()),
          () => store.invalidateKey(LONG),
        ]) {
          const generation = store.purgeGeneration(LONG);
          const writer = store.createWriter(LONG);
          await writer.write(bytes(CHUNK, 4));
          await purge();
          const { bodyId: _b, chunks: _c, size: _s, ...rest } = entryRecord({ url: LONG, chunkSize: CHUNK });
          const result = await writer.commit(
            LONG,
            rest,
            bytes(5, 5),
            () => store.purgeGeneration(LONG) === generation,
          );
          assert.equal(result, 'superseded');
          assert.equal(store.lookup(LONG, {}).kind, 'miss');
        }
        assert.equal(store.usage().entries, 0);
        assert.equal(store.usage().bytes, 0);
      } finally {
        await store.close();
      }
    });

    it('replaces a variant stored again: one record, the new body, its cost counted once', async () => {
      const { store } = fresh();
      try {
        const vary = language('en');
        assert.equal(await fill(store, LONG, { ...vary, etag: '"1"' }, bytes(3000, 1)), 'stored');
        const first = store.usage();
        assert.equal(await fill(store, LONG, { ...vary, etag: '"2"' }, bytes(3000, 2)), 'stored');
        const record = found(store, LONG, { 'accept-language': 'en' });
        assert.equal(record.etag, '"2"');
        assert.deepEqual(bodyOf(store, record), bytes(3000, 2));
        assert.equal([...store.variants(LONG)].length, 1);
        assert.deepEqual(store.usage(), first, 'entries and bytes unchanged by the replacement');
      } finally {
        await store.close();
      }
    });

    it('keeps the tag index exact: a tag purge removes exactly the tagged variants, replaced tags are gone', async () => {
      const { store } = fresh();
      try {
        await fill(store, LONG, { ...language('en'), tags: ['red', 'blue'] }, bytes(100, 1));
        await fill(store, LONG, { ...language('fr'), tags: ['blue'] }, bytes(100, 2));
        await fill(store, SHORT, { tags: ['red'] }, bytes(100, 3));
        // The English variant is stored again with other tags: `red` no longer names it.
        await fill(store, LONG, { ...language('en'), tags: ['green'] }, bytes(100, 4));
        assert.deepEqual([...store.tagged('red')], [SHORT]);
        assert.deepEqual([...store.tagged('green')], [variantOf(LONG, 'en')]);
        assert.deepEqual([...store.tagged('blue')], [variantOf(LONG, 'fr')]);

        const walk = new PurgeWalk(store, false, [], [], ['blue']);
        await store.write(() => walk.stepInTxn(100));
        assert.equal(walk.purged, 1);
        assert.equal(store.lookup(LONG, { 'accept-language': 'fr' }).kind, 'vary-miss');
        assert.equal(found(store, LONG, { 'accept-language': 'en' }).tags[0], 'green');
        assert.equal(found(store, SHORT).tags[0], 'red');
        assert.deepEqual([...store.tagged('blue')], []);
        assert.equal(store.usage().entries, 2);
      } finally {
        await store.close();
      }
    });

    it('has everything back after a reopen, eviction order included', async () => {
      const { dir, store } = fresh();
      const urls = [SHORT, LONG, `${SHORT}/2`];
      for (const [i, url] of urls.entries()) {
        time += 1000;
        await fill(store, url, { tags: ['t'] }, bytes(1500 + i, i));
      }
      time += 1000;
      store.touch(SHORT); // the oldest becomes the most recently used
      const usage = store.usage();
      await store.close();

      const again = factory(dir, options);
      try {
        for (const [i, url] of urls.entries())
          assert.deepEqual(bodyOf(again, found(again, url)), bytes(1500 + i, i));
        assert.deepEqual(
          again.evictionOrder().map((c) => c.id),
          [LONG, `${SHORT}/2`, SHORT],
        );
        assert.deepEqual(again.usage(), usage);
        assert.deepEqual([...again.tagged('t')].sort(), [...urls].sort());
      } finally {
        await again.close();
      }
    });

    it('keeps the eviction order exact as variants are stored, replaced, touched and removed', async () => {
      const { store } = fresh();
      try {
        const urls = Array.from({ length: 6 }, (_, i) => `${LONG}&page=${i}`);
        for (const url of urls) {
          time += 1000;
          await fill(store, url, {}, bytes(100, 1));
        }
        time += 1000;
        await fill(store, LONG, language('en'), bytes(100, 2));
        time += 1000;
        await fill(store, urls[0]!, {}, bytes(200, 3)); // stored again: now the newest
        time += 1000;
        store.touch(urls[1]!);
        await store.flushAccess();
        await store.removeKey(urls[2]!);
        const expected = [urls[3], urls[4], urls[5], variantOf(LONG, 'en'), urls[0], urls[1]];
        const order = store.evictionOrder();
        assert.deepEqual(
          order.map((c) => c.id),
          expected,
        );
        for (let i = 1; i < order.length; i++) assert.ok(order[i]!.time >= order[i - 1]!.time);
        assert.equal(order.length, store.usage().entries);
        // A page at a time, continuing after the last one read.
        const first = store.evictionOrder({ limit: 4 });
        const rest = store.evictionOrder({ after: first.at(-1)!, limit: 10 });
        assert.deepEqual([...first, ...rest], order);
        assert.ok(first[0]!.cost > 100);
      } finally {
        await store.close();
      }
    });

    it('counts tagged variants and keys under a prefix as a purge walk visits them', async () => {
      const { store } = fresh();
      try {
        await fill(store, LONG, { ...language('en'), tags: ['t'] }, bytes(10, 1));
        await fill(store, LONG, { ...language('fr'), tags: ['t'] }, bytes(10, 2));
        await fill(store, `${SHORT}/a`, { tags: ['t'] }, bytes(10, 3));
        await fill(store, 'http://d.test/', {}, bytes(10, 4));
        assert.equal(store.countTagged('t'), 3);
        assert.equal(store.countTagged('none'), 0);
        // LONG: its Vary marker and two variants.
        assert.equal(store.countKeys('http://contract.test/'), 3);
        assert.equal(store.countKeys('http://c.test/'), 1);
        assert.equal(store.countKeys(''), 5);
        const walk = new PurgeWalk(store, false, [], ['http://contract.test/'], ['t']);
        assert.equal(walk.estimate(), 6);
        await store.write(() => walk.stepInTxn(100));
        assert.equal(walk.visited, 3 + 1);
      } finally {
        await store.close();
      }
    });

    it('keeps at most maxVariants variants of a URL, the least recently used going first', async () => {
      const { store } = fresh({ maxVariants: 2 });
      try {
        for (const value of ['en', 'fr']) {
          time += 1000;
          await fill(store, LONG, language(value), bytes(10, 1));
        }
        time += 1000;
        store.touch(variantOf(LONG, 'en'));
        time += 1000;
        await fill(store, LONG, { ...language('de') }, bytes(10, 2));
        assert.deepEqual(
          [...store.variants(LONG)].map((v) => v.id).sort(),
          [variantOf(LONG, 'de'), variantOf(LONG, 'en')].sort(),
        );
        assert.equal(store.usage().entries, 2);
      } finally {
        await store.close();
      }
    });

    it('reads a damaged chunk as a miss and removes the entry, without an exception', async () => {
      const { dir, store } = fresh();
      await fill(store, LONG, {}, bytes(2000, 7));
      const { bodyId } = found(store, LONG);
      await store.close();
      await withRawStore(dir, (raw) => {
        const chunk = Buffer.from(raw.chunks.getBinary([bodyId, 1])!);
        chunk[0] = chunk[0]! ^ 0xff;
        raw.chunks.put([bodyId, 1], chunk);
      });
      const again = factory(dir, options);
      try {
        assert.equal(again.lookup(LONG, {}).kind, 'miss', 'a small body is checked before it is served');
        assert.equal(again.corrupt, 1);
      } finally {
        await again.close();
      }
    });

    it('reads a record of an unknown version as a miss, and refuses a directory of newer records', async () => {
      const { dir, store } = fresh();
      await fill(store, SHORT, {}, bytes(10, 1));
      await fill(store, LONG, {}, bytes(10, 2));
      await store.close();
      await withRawStore(dir, (raw) => {
        raw.entries.put(SHORT, { ...(raw.entries.get(SHORT) as EntryRecord), v: 99, sum: undefined });
      });
      const again = factory(dir, options);
      try {
        assert.equal(again.lookup(SHORT, {}).kind, 'miss');
        assert.equal(found(again, LONG).size, 10, 'the other entries are served');
      } finally {
        await again.close();
      }
      await withRawStore(dir, (raw) => raw.meta.put('recordVersion', 2));
      assert.throws(
        () => factory(dir, options),
        (error: unknown) =>
          isEdgeError(error) &&
          error.code === 'EDGE_ERR_STORE_SCHEMA' &&
          /entry records of version 2/.test(error.message) &&
          /newer version/.test(error.message),
      );
    });
  });
}
