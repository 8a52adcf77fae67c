import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EntryRecord } from '../../../src/cache/record.ts';
import type { CacheStore, StoreOptions } from '../../../src/cache/store.ts';
import { entryRecord } from '../../helpers/records.ts';
import { testStore } from '../../helpers/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(overrides: Partial<StoreOptions> = {}): CacheStore {
  return testStore(dir, overrides);
}

function record(bodyId: string, lifetime: number): EntryRecord {
  return entryRecord({ bodyId, lifetime, headers: ['cache-control', `max-age=${lifetime}`] });
}

/** Another process writing to `shared` as a worker would (helpers/store-writer-process.ts). */
function writerProcess(shared: string): ChildProcess {
  return fork(join(import.meta.dirname, '../../helpers/store-writer-process.ts'), [shared], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

async function stopProcess(other: ChildProcess): Promise<void> {
  other.disconnect();
  await once(other, 'exit');
}

/** Waits for the other process's marker file without yielding: this process stays in its snapshot. */
function waitWithoutYielding(marker: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 10_000 && !existsSync(marker); i++) Atomics.wait(pause, 0, 0, 1);
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

  it('sees its own commit at the first read after it, though a read earlier in the same turn compared the record', async () => {
    const store = open({ dir: mkdtempSync(join(dir, 'own-')) });
    const url =
      'https://www.example.com/catalog/2026/collections/autumn/product-4411/detail.html?colour=forest-green&size=xl&ref=homepage-carousel';
    let reading = true;
    let reads = 0;
    try {
      await store.write(() => store.commitEntryInTxn(url, url, record('v0', 60)));
      // A reader in every turn's check phase: the record is compared there, and each commit
      // below resolves in the poll phase of the turn after.
      const reader = (async () => {
        for (let i = 0; i < 10_000 && reading; i++) {
          assert.equal(store.lookup(url, {}).kind, 'found');
          reads++;
          await nextTurn();
        }
      })();
      for (let i = 1; i <= 60; i++) {
        await store.write(() => store.commitEntryInTxn(url, url, record(`v${i}`, 60)));
        const found = store.lookup(url, {});
        assert.equal(found.kind === 'found' && found.record.bodyId, `v${i}`, `commit ${i} seen at once`);
      }
      reading = false;
      await reader;
      assert.ok(reads > 0);
    } finally {
      reading = false;
      await store.close();
    }
  });

  it("sees another process's commit of a record it reads in every turn within a few turns, and at once after resetReadTxn", async () => {
    const shared = mkdtempSync(join(dir, 'shared-'));
    const store = open({ dir: shared });
    const url =
      'https://www.example.com/catalog/2026/collections/autumn/product-4412/detail.html?colour=forest-green&size=xl&ref=homepage-carousel';
    const other = writerProcess(shared);
    try {
      await once(other, 'message');
      await store.write(() => store.commitEntryInTxn(url, url, record('mine', 60)));
      for (let round = 1; round <= 6; round++) {
        const found = store.lookup(url, {});
        assert.ok(found.kind === 'found');
        const committed = once(other, 'message');
        if (round % 2 === 1) {
          // Waits for the commit without yielding: this process stays in the snapshot it read in.
          const marker = join(shared, `committed-${round}`);
          other.send({ id: url, bodyId: `theirs-${round}`, marker });
          waitWithoutYielding(marker);
          assert.ok(existsSync(marker), 'the other process committed');
          const before = store.lookup(url, {});
          assert.ok(
            before.kind === 'found' && before.record.bodyId !== `theirs-${round}`,
            'the old snapshot',
          );
          // A new snapshot asked for (a worker told another worker's fill is committed): at once.
          store.resetReadTxn();
          const now = store.lookup(url, {});
          assert.equal(
            now.kind === 'found' && now.record.bodyId,
            `theirs-${round}`,
            `round ${round}: seen after resetReadTxn`,
          );
          await committed;
          continue;
        }
        other.send({ id: url, bodyId: `theirs-${round}` });
        // The record stays hot here while the other process commits.
        let turns = 0;
        let done = false;
        void committed.then(() => {
          done = true;
        });
        for (; turns < 5_000 && !done; turns++) {
          store.lookup(url, {});
          await nextTurn();
        }
        assert.ok(done, 'the other process committed');
        let seen = '';
        for (let i = 0; i < 10 && seen !== `theirs-${round}`; i++) {
          const now = store.lookup(url, {});
          seen = now.kind === 'found' ? now.record.bodyId : now.kind;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        assert.equal(seen, `theirs-${round}`, `round ${round}: the other process's record seen`);
      }
    } finally {
      await stopProcess(other);
      await store.close();
    }
  });

  it('sees its own commit once write() resolves, when a later write of this process resolved the commit', async () => {
    const store = open({ dir: mkdtempSync(join(dir, 'resolved-')) });
    const url = 'https://www.example.com/catalog/2026/product-4413/detail.html';
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const bulk = Buffer.alloc(16 * 1024, 1);
    try {
      await store.write(() => store.commitEntryInTxn(url, url, record('v0', 60)));
      for (let i = 1; i <= 5; i++) {
        const written = store.write(() => {
          store.commitEntryInTxn(url, url, record(`v${i}`, 60));
          // 4 MiB more: the writer thread takes a while to commit this transaction.
          for (let chunk = 0; chunk < 256; chunk++) void store.putChunk(`bulk-${i}`, chunk, bulk);
          // Right after the callback, out of the write transaction: the record is compared in
          // the snapshot from before this commit.
          queueMicrotask(() => {
            store.lookup(url, {});
            setImmediate(() => {
              // The writer thread commits meanwhile; the chunk writes below then resolve that
              // commit (lmdb-js resolveWrites: 'aftercommit' at once, its read transaction reset
              // on a microtask), and the record is compared again, still in the old snapshot.
              Atomics.wait(pause, 0, 0, 100);
              for (let chunk = 0; chunk < 16; chunk++) {
                void store.putChunk(`other-${i}`, chunk, Buffer.from('x'));
                store.lookup(url, {});
              }
            });
          });
        });
        await written;
        const found = store.lookup(url, {});
        assert.equal(found.kind === 'found' && found.record.bodyId, `v${i}`, `commit ${i} seen once written`);
      }
    } finally {
      await store.close();
    }
  });

  it("sees another process's commit in the turn after it, though the record was compared in the check phase before", async () => {
    const shared = mkdtempSync(join(dir, 'check-'));
    const store = open({ dir: shared });
    const url = 'https://www.example.com/catalog/2026/product-4414/detail.html';
    const other = writerProcess(shared);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    try {
      await once(other, 'message');
      await store.write(() => store.commitEntryInTxn(url, url, record('mine', 60)));
      for (let round = 1; round <= 3; round++) {
        const seen = new Promise<string>((resolve) => {
          setImmediate(() => {
            // Compared in this turn's check phase; the other process commits before it ends.
            assert.equal(store.lookup(url, {}).kind, 'found');
            const marker = join(shared, `check-${round}`);
            other.once('message', () => {
              // A later turn (lmdb-js reset its read transaction in its timers phase).
              const now = store.lookup(url, {});
              resolve(now.kind === 'found' ? now.record.bodyId : now.kind);
            });
            other.send({ id: url, bodyId: `theirs-${round}`, marker });
            waitWithoutYielding(marker);
            Atomics.wait(pause, 0, 0, 5);
          });
        });
        assert.equal(await seen, `theirs-${round}`, `round ${round}`);
      }
    } finally {
      await stopProcess(other);
      await store.close();
    }
  });

  it('sees a key it read as absent once this process or another one commits it, in the same turn as the absent reads', async () => {
    const shared = mkdtempSync(join(dir, 'absent-'));
    const store = open({ dir: shared });
    const url = (i: number, who: string): string =>
      `https://www.example.com/catalog/2026/collections/autumn/product-${i}/detail.html?colour=forest-green&size=xl&by=${who}`;
    const other = writerProcess(shared);
    try {
      await once(other, 'message');
      for (let i = 1; i <= 5; i++) {
        // This process: absent, asked twice in the turn, then committed here.
        const own = url(i, 'own');
        assert.equal(store.lookup(own, {}).kind, 'miss');
        assert.equal(store.lookup(own, {}).kind, 'miss');
        await store.write(() => store.commitEntryInTxn(own, own, record(`own-${i}`, 60)));
        const found = store.lookup(own, {});
        assert.equal(
          found.kind === 'found' && found.record.bodyId,
          `own-${i}`,
          `own commit ${i} seen at once`,
        );
        // Another process: absent here in this snapshot, committed there while this process
        // waits without yielding; after resetReadTxn (a worker told of a fill), seen at once.
        const theirs = url(i, 'theirs');
        assert.equal(store.lookup(theirs, {}).kind, 'miss');
        const committed = once(other, 'message');
        const marker = join(shared, `absent-${i}`);
        other.send({ id: theirs, bodyId: `theirs-${i}`, marker });
        waitWithoutYielding(marker);
        assert.ok(existsSync(marker), 'the other process committed');
        assert.equal(store.lookup(theirs, {}).kind, 'miss', 'the old snapshot');
        store.resetReadTxn();
        const now = store.lookup(theirs, {});
        assert.equal(now.kind === 'found' && now.record.bodyId, `theirs-${i}`, `their commit ${i} seen`);
        await committed;
      }
      // Removed: absent again at the next read.
      const removed = url(1, 'own');
      await store.write(() => store.removeKeyInTxn(removed));
      assert.equal(store.lookup(removed, {}).kind, 'miss');
    } finally {
      await stopProcess(other);
      await store.close();
    }
  });

  it("sees the purge generation move at once after its own purge or invalidation, and after another process's once it renews its snapshot", async () => {
    const shared = mkdtempSync(join(dir, 'generation-'));
    const store = open({ dir: shared });
    const url =
      'https://www.example.com/catalog/2026/collections/autumn/product-4415/detail.html?colour=forest-green&size=xl&ref=homepage-carousel';
    const other = writerProcess(shared);
    try {
      await once(other, 'message');
      let before = store.purgeGeneration(url);
      for (let round = 1; round <= 3; round++) {
        assert.equal(store.purgeGeneration(url), before, 'unchanged within the snapshot');
        // This process: a purge (the node-wide sequence), then an invalidation of the key.
        await store.write(() => store.bumpPurgeGenerationInTxn());
        const purged = store.purgeGeneration(url);
        assert.notEqual(purged, before, `round ${round}: own purge seen at once`);
        await store.invalidateKey(url);
        const invalidated = store.purgeGeneration(url);
        assert.notEqual(invalidated, purged, `round ${round}: own invalidation seen at once`);
        // Another process invalidates the key while this one waits without yielding.
        const marker = join(shared, `generation-${round}`);
        const done = once(other, 'message');
        other.send({ id: url, bodyId: '', marker, invalidate: true });
        waitWithoutYielding(marker);
        assert.ok(existsSync(marker), 'the other process invalidated');
        assert.equal(store.purgeGeneration(url), invalidated, 'the old snapshot');
        store.resetReadTxn();
        before = store.purgeGeneration(url);
        assert.notEqual(before, invalidated, `round ${round}: their invalidation seen`);
        await done;
      }
    } finally {
      await stopProcess(other);
      await store.close();
    }
  });

  it('keeps the records it decodes within its bound when they carry large header fields', async () => {
    const bound = 512 * 1024;
    const store = open({ dir: mkdtempSync(join(dir, 'decoded-')), decodedBytes: bound });
    const policy = `default-src 'self'; script-src 'self' https://cdn.example.com ${'x'.repeat(6_000)}`;
    const url = (i: number): string =>
      `https://www.example.com/assets/catalog/2026/collections/autumn/product-${i}/images/large/front-view.jpg?width=1200&format=webp&v=${i}`;
    try {
      const count = 300;
      await store.write(() => {
        for (let i = 0; i < count; i++) {
          const headers = [
            'cache-control',
            'max-age=60',
            'content-security-policy',
            policy,
            'etag',
            `"v${i}"`,
          ];
          store.commitEntryInTxn(url(i), url(i), entryRecord({ bodyId: `body-${i}`, url: url(i), headers }));
        }
      });
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < count; i++) {
          const found = store.lookup(url(i), {});
          assert.ok(found.kind === 'found', `record ${i} found`);
          assert.equal(found.record.bodyId, `body-${i}`);
          assert.ok(found.record.headers.includes(`"v${i}"`));
          assert.ok(
            store.decodedBytes <= bound,
            `decoded records hold ${store.decodedBytes} bytes, bound ${bound}`,
          );
        }
      }
      assert.ok(store.decodedBytes > bound / 4, 'records are kept decoded up to the bound');
    } finally {
      await store.close();
    }
  });
});
