/**
 * Variant keys round-trip through LMDB at every length, a schema 1 directory (variant keys
 * separated by \0) is migrated when opened, one from a newer version is refused, and the
 * number of variants per URL is capped with the least recently used going first.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { variantKey } from '../../../src/cache/key.ts';
import { META } from '../../../src/cache/meta-keys.ts';
import type { VaryMarker } from '../../../src/cache/record.ts';
import { type CacheStore, STORE_SCHEMA } from '../../../src/cache/store.ts';
import { isEdgeError } from '../../../src/errors.ts';
import { withRawStore } from '../../helpers/raw-lmdb.ts';
import { entryRecord } from '../../helpers/records.ts';
import { testStore } from '../../helpers/test-store.ts';

const root = mkdtempSync(join(tmpdir(), 'strata-keys-'));
after(() => rmSync(root, { recursive: true, force: true }));

let clock = 1000;
function open(dir: string, maxVariants?: number): CacheStore {
  return testStore(join(root, dir), {
    now: () => clock,
    ...(maxVariants === undefined ? {} : { maxVariants }),
  });
}

/** A primary key exactly `length` characters long. */
function keyOf(length: number): string {
  const base = 'http://k.test/';
  return base + 'k'.repeat(length - base.length);
}

const LENGTHS = [20, 40, 41, 42, 63, 64, 65, 2000].map((n) => Math.min(n, 1000));

describe('variant keys in LMDB', () => {
  it('come back from range reads as the strings that were written, at every length', async () => {
    const store = open('roundtrip');
    try {
      await store.write(() => {
        for (const length of LENGTHS) {
          const storage = keyOf(length);
          for (const language of ['en', 'fr']) {
            const id = variantKey(storage, language);
            store.commitEntryInTxn(
              storage,
              id,
              entryRecord({ url: storage, vary: ['accept-language'], secondaryKey: language, tags: ['t'] }),
            );
          }
        }
      });
      for (const length of LENGTHS) {
        const storage = keyOf(length);
        const keys = [...store.variants(storage)].map((v) => v.id);
        assert.equal(keys.length, 2, `two variants at ${length}`);
        for (const key of keys) assert.equal(typeof key, 'string', `a string key at ${length}`);
      }
      const tagged = [...store.tagged('t')];
      assert.equal(tagged.length, LENGTHS.length * 2);
      for (const id of tagged) assert.equal(typeof id, 'string');
      for (const { id } of store.evictionOrder()) assert.equal(typeof id, 'string');
    } finally {
      await store.close();
    }
  });

  it('migrates a schema 1 directory, whose variant keys were separated by \\0, when it is opened', async () => {
    await open('schema1').close();
    const storage = keyOf(200);
    const oldId = `${storage}\u0000${'h'.repeat(22)}`;
    const shortStorage = keyOf(20);
    const shortOldId = `${shortStorage}\u0000${'s'.repeat(22)}`;
    await withRawStore(join(root, 'schema1'), (old) => {
      for (const [key, id] of [
        [storage, oldId],
        [shortStorage, shortOldId],
      ] as const) {
        const marker: VaryMarker = { kind: 'vary', v: 1, fields: ['accept-language'] };
        old.entries.put(key, marker);
        old.entries.put(id, entryRecord({ url: key, vary: ['accept-language'], tags: ['old'] }));
        old.tags.put('old', id);
        old.access.put(id, [1, 100]);
      }
      old.meta.put('schema', 1);
    });

    const store = open('schema1');
    try {
      assert.equal(store.readMeta(META.schema), STORE_SCHEMA);
      for (const key of [storage, shortStorage]) {
        const variants = [...store.variants(key)];
        assert.equal(variants.length, 1);
        assert.equal(typeof variants[0]!.id, 'string');
        assert.equal(variants[0]!.record.kind, 'entry');
      }
      const tagged = [...store.tagged('old')];
      assert.deepEqual(tagged.sort(), [oldId, shortOldId].map((id) => id.replace('\u0000', '\u001f')).sort());
      assert.equal(store.usage().entries, 2);
      for (const { id } of store.evictionOrder()) assert.ok(!id.includes('\u0000'));
    } finally {
      await store.close();
    }
  });

  it('builds the access-order index when a schema 2 directory (which had none) is opened', async () => {
    const before = open('schema2');
    const ids = [keyOf(30), keyOf(90), keyOf(400)];
    try {
      for (const [i, id] of ids.entries()) {
        clock = 5000 - i * 100; // the last written is the least recently used
        await before.write(() =>
          before.commitEntryInTxn(id, id, entryRecord({ url: id, size: 10 * (i + 1) })),
        );
      }
    } finally {
      await before.close();
    }
    // What schema 2 left: access times in `access`, no index.
    await withRawStore(join(root, 'schema2'), (old) => {
      for (const key of [...old.accessOrder.getKeys({})]) old.accessOrder.remove(key);
      old.meta.put('schema', 2);
    });
    const store = open('schema2');
    try {
      assert.equal(store.readMeta(META.schema), STORE_SCHEMA);
      assert.deepEqual(
        store.evictionOrder().map((c) => c.id),
        [...ids].reverse(),
      );
      assert.deepEqual(
        store.evictionOrder().map((c) => c.time),
        [4800, 4900, 5000],
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a directory written by a newer version with one clear error', async () => {
    await open('newer').close();
    await withRawStore(join(root, 'newer'), (newer) => newer.meta.put('schema', STORE_SCHEMA + 1));
    assert.throws(
      () => open('newer'),
      (error: unknown) =>
        isEdgeError(error) && error.code === 'EDGE_ERR_STORE_SCHEMA' && /newer version/.test(error.message),
    );
  });
});

describe('variants per URL', () => {
  it('keeps at most maxVariants, evicting the least recently used other than the one stored', async () => {
    const store = open('cap', 3);
    const storage = keyOf(120);
    const put = (language: string) =>
      store.write(() =>
        store.commitEntryInTxn(
          storage,
          variantKey(storage, language),
          entryRecord({ url: storage, vary: ['accept-language'], secondaryKey: language }),
        ),
      );
    try {
      for (const language of ['a', 'b', 'c']) {
        clock += 10;
        await put(language);
      }
      clock += 10;
      store.touch(variantKey(storage, 'a'));
      clock += 10;
      await put('d');
      const left = [...store.variants(storage)].map((v) => v.id).sort();
      assert.deepEqual(
        left,
        ['a', 'c', 'd'].map((l) => variantKey(storage, l)).sort(),
        'b was least recently used',
      );
      for (let i = 0; i < 50; i++) {
        clock += 10;
        await put(`x${i}`);
      }
      assert.equal([...store.variants(storage)].length, 3);
      assert.equal(store.usage().entries, 3, 'evicted variants leave the eviction index');
      assert.ok(store.usage().bytes < 3 * 2000, 'and their bytes are no longer counted');
    } finally {
      await store.close();
    }
  });
});
