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
