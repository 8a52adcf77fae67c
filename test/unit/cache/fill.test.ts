import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Fill } from '../../../src/cache/fill.ts';
import { CacheStore } from '../../../src/cache/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-fill-'));
const store = new CacheStore({
  dir,
  maxSize: 1 << 30,
  chunkSize: 256 * 1024,
  memorySize: 64 << 20,
  memoryObjectSize: 4 << 20,
  log: pino({ level: 'silent' }),
  now: Date.now,
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `count` one-byte reads, as an origin writing tiny chunks over a slow link delivers them. */
function tinyReads(count: number): { source: Readable; expected: Buffer } {
  const expected = Buffer.alloc(count);
  for (let i = 0; i < count; i++) expected[i] = 97 + (i % 26);
  const reads = Array.from({ length: count }, (_, i) => expected.subarray(i, i + 1));
  return { source: Readable.from(reads), expected };
}

describe('Fill with many tiny reads', () => {
  it('regression: the whole body of 200,000 one-byte reads is kept (a spread of its pieces overflowed the stack)', async () => {
    const { source, expected } = tinyReads(200_000);
    const fill = new Fill(store, undefined, true);
    await fill.consume(source);
    assert.equal(fill.state, 'done');
    assert.equal(fill.received, expected.length);
    const body = fill.wholeBody();
    assert.ok(body !== undefined);
    assert.ok(body.equals(expected));
  });

  it('keeps the unsealed bytes in a few pieces, however many reads brought them', async () => {
    const { source, expected } = tinyReads(100_000);
    const fill = new Fill(store, undefined, true);
    await fill.consume(source);
    const pieces = fill.partialFrom(0);
    assert.ok(pieces.length <= 16, `${pieces.length} pieces`);
    assert.ok(Buffer.concat(pieces).equals(expected));
    assert.ok(Buffer.concat(fill.partialFrom(12_345)).equals(expected.subarray(12_345)));
  });

  it('copies a small body out of its gathering buffer for the memory tier', async () => {
    const { source, expected } = tinyReads(10);
    const fill = new Fill(store, undefined, true);
    await fill.consume(source);
    const gathered = fill.partialFrom(0);
    assert.equal(gathered.length, 1);
    const body = fill.wholeBody()!;
    assert.ok(body.equals(expected));
    assert.notEqual(body.buffer, gathered[0]!.buffer);
  });
});

describe('Fill after its origin body ended', () => {
  it('keeps no reference to the origin body (it would keep the whole request alive until the commit)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fill = new Fill(store, undefined, true);
    const source = await (async () => {
      const { source } = tinyReads(1000);
      await fill.consume(source);
      return new WeakRef(source);
    })();
    assert.equal(fill.state, 'done');
    // A WeakRef's target is held until the job that made it ends, and the ended stream's own
    // close is still queued for a turn or two: collect on later turns, a bounded number of times.
    // Twice each: a collection that finishes a marking already under way keeps what that
    // marking found alive (the stream, before it ended); the second marks from scratch.
    for (let turn = 0; turn < 10 && source.deref() !== undefined; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      gc();
    }
    assert.equal(source.deref(), undefined, 'the ended origin body is still reachable from its fill');
    assert.equal(fill.received, 1000);
  });
});

describe('Fill with a reader that takes nothing', () => {
  it('holds a bounded number of chunks while storing, and the reader reads the rest back from LMDB', async () => {
    const size = 24 * 1024 * 1024; // 96 chunks of 256 KiB
    const expected = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) expected.writeUInt32BE(i, i);
    const reads = [];
    for (let i = 0; i < size; i += 64 * 1024) reads.push(expected.subarray(i, i + 64 * 1024));
    const fill = new Fill(store, store.createWriter('paused-reader'), true);
    // A client that stopped reading: it stays at its first chunk.
    const paused = { chunk: 0 } as unknown as import('../../../src/cache/fill-reader.ts').FillReader;
    fill.addReader(paused);
    let most = 0;
    fill.onProgress(function watch() {
      most = Math.max(most, fill.heldChunks);
      if (fill.state === 'streaming') fill.onProgress(watch);
    });
    await fill.consume(Readable.from(reads));
    for (let turn = 0; turn < 500 && fill.committedCount < fill.sealedCount; turn++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(fill.committedCount, 96);
    fill.advanced();
    assert.ok(most <= 8 + 16 + 2, `held ${most} chunks at most`);
    assert.ok(fill.heldChunks <= 8, `held ${fill.heldChunks} chunks once committed`);
    // The reader, catching up, gets every byte.
    const parts = [];
    for (let i = 0; i < fill.sealedCount; i++) parts.push(Buffer.from(fill.chunk(i)!));
    assert.ok(Buffer.concat(parts).equals(expected));
    fill.removeReader(paused);
  });
});
