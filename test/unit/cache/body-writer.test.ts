import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BodyStore, BodyWriter } from '../../../src/cache/body-writer.ts';
import type { EntryRecord } from '../../../src/cache/record.ts';

/** A store whose chunk batches commit when the test says so. */
function fakeStore() {
  const batches: Array<{ first: number; chunks: Buffer[]; commit: () => void; fail: (e: Error) => void }> =
    [];
  const stored = new Map<number, Buffer>();
  const store: BodyStore = {
    putChunk: (_id, index, chunk) => {
      stored.set(index, chunk);
      return Promise.resolve(true);
    },
    putChunks: (_id, first, chunks) =>
      new Promise((resolve, reject) => {
        batches.push({
          first,
          chunks: [...chunks],
          commit: () => {
            for (const [i, chunk] of chunks.entries()) stored.set(first + i, chunk);
            resolve(undefined);
          },
          fail: reject,
        });
      }),
    commitGathered: async <T>(work: () => T) => work(),
    commitEntryInTxn: () => {},
    removeBodyLater: () => {},
    writeSucceeded: () => {},
    writeFailed: () => {},
  };
  return { store, batches, stored };
}

const RECORD = {} as Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'>;
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BodyWriter batches', () => {
  it('writes the chunks sealed while a batch commits together in the next one, in order', async () => {
    const { store, batches, stored } = fakeStore();
    const writer = new BodyWriter(store, 'k', 'b1');
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.from(`chunk-${i}`));
    const committed: number[] = [];
    chunks.forEach((chunk, i) => void writer.write(chunk).then(() => committed.push(i)));
    assert.equal(batches.length, 1, 'one batch in flight at a time');
    assert.equal(writer.inFlight, 6);
    batches[0]!.commit();
    await tick();
    assert.deepEqual(committed, [0]);
    assert.equal(batches.length, 2);
    assert.equal(batches[1]!.first, 1);
    assert.equal(batches[1]!.chunks.length, 5);
    batches[1]!.commit();
    await tick();
    assert.deepEqual(committed, [0, 1, 2, 3, 4, 5]);
    assert.equal(writer.inFlight, 0);
    const result = await writer.commit('id', RECORD, Buffer.from('last'));
    assert.equal(result, 'stored');
    assert.deepEqual(
      [...stored.keys()].sort((a, b) => a - b).map((i) => stored.get(i)!.toString()),
      [...chunks.map(String), 'last'],
    );
  });

  it('commits nothing when a batch failed, writes no later batch, and reports those chunks unwritten', async () => {
    const { store, batches } = fakeStore();
    const writer = new BodyWriter(store, 'k', 'b2');
    const written = Array.from({ length: 4 }, (_, i) => writer.write(Buffer.from(`c${i}`)));
    const result = writer.commit('id', RECORD, Buffer.from('last'));
    batches[0]!.fail(new Error('disk full'));
    assert.equal(await result, 'failed');
    assert.equal(batches.length, 1);
    assert.equal(writer.failed, true);
    assert.deepEqual(await Promise.all(written), [false, false, false, false]);
  });

  it('writes no queued chunk once the fill is given up', async () => {
    const { store, batches } = fakeStore();
    const writer = new BodyWriter(store, 'k', 'b3');
    const written = Array.from({ length: 3 }, (_, i) => writer.write(Buffer.from(`c${i}`)));
    writer.abort();
    batches[0]!.commit();
    assert.deepEqual(await Promise.all(written), [true, false, false]);
    assert.equal(batches.length, 1);
    assert.equal(writer.inFlight, 0);
  });
});
