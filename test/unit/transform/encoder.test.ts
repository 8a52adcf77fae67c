import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { Encoder } from '../../../src/transform/encoder.ts';

const body = Buffer.from('{"compressible":"yes"}\n'.repeat(500));
const LEVELS = { gzip: 1, br: 1, zstd: 1 };

describe('Encoder', () => {
  it('makes gzip, br and zstd that decode to the input, counting each and the bytes saved', async () => {
    const seen: string[] = [];
    const encoder = new Encoder(LEVELS, 4, { compressed: (coding) => seen.push(coding), queue: () => {} });
    assert.ok(gunzipSync(await encoder.encode('gzip', body)!).equals(body));
    assert.ok(brotliDecompressSync(await encoder.encode('br', body)!).equals(body));
    assert.ok(zstdDecompressSync(await encoder.encode('zstd', body)!).equals(body));
    assert.deepEqual(seen, ['gzip', 'br', 'zstd']);
    assert.deepEqual(encoder.stats.compressions, { zstd: 1, br: 1, gzip: 1 });
    assert.ok(encoder.stats.bytesSaved.br > body.length / 2);
  });

  it('refuses work past its bound instead of queueing without limit', async () => {
    const queue: number[] = [];
    const encoder = new Encoder(LEVELS, 2, { compressed: () => {}, queue: (n) => queue.push(n) });
    const a = encoder.encode('gzip', body);
    const b = encoder.encode('br', body);
    assert.equal(encoder.encode('zstd', body), undefined);
    assert.equal(encoder.stats.refused, 1);
    await Promise.all([a, b]);
    assert.equal(encoder.pending, 0);
    assert.equal(Math.max(...queue), 2);
    assert.notEqual(encoder.encode('zstd', body), undefined);
  });
});

describe('Encoder: bytes held', () => {
  const large = Buffer.from('{"row":"a compressible line of a large export"}\n'.repeat(15_000)); // 720 KB

  it('refuses a body that would take the bodies held past its byte bound, whatever the count', async () => {
    const encoder = new Encoder(LEVELS, 64, undefined, 1024 * 1024);
    assert.equal(encoder.admits(large.length), true);
    const first = encoder.encode('br', large);
    assert.notEqual(first, undefined);
    assert.equal(encoder.admits(large.length), false);
    assert.equal(encoder.encode('gzip', large), undefined, 'two of them would hold 1.4 MB');
    assert.equal(encoder.stats.refused, 1);
    assert.notEqual(encoder.encode('gzip', body), undefined, 'a small one still fits beside it');
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(encoder.admits(large.length), true);
    assert.notEqual(encoder.encode('gzip', large), undefined);
  });

  it('takes one body larger than the bound when nothing else is held', () => {
    const encoder = new Encoder(LEVELS, 64, undefined, large.length - 1);
    assert.notEqual(encoder.encode('gzip', large), undefined);
  });
});
