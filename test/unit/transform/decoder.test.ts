import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { decodable, decodeStream, singleCoding } from '../../../src/transform/decoder.ts';

const body = Buffer.from('{"decoded":"as it streams"}\n'.repeat(2000));

async function read(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The encoded bytes in pieces of 1000, as an origin body arrives. */
function arriving(bytes: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 1000) pieces.push(bytes.subarray(i, i + 1000));
  return Readable.from(pieces);
}

describe('singleCoding', () => {
  it('names one coding, lower case, and nothing for none, identity or a stack', () => {
    assert.equal(singleCoding('GZIP'), 'gzip');
    assert.equal(singleCoding(' br '), 'br');
    assert.equal(singleCoding('identity'), undefined);
    assert.equal(singleCoding(undefined), undefined);
    assert.equal(singleCoding('gzip, br'), undefined);
    assert.equal(decodable('compress'), false);
  });
});

describe('decodeStream', () => {
  for (const [coding, encoded] of [
    ['gzip', gzipSync(body)],
    ['x-gzip', gzipSync(body)],
    ['deflate', deflateSync(body)],
    ['br', brotliCompressSync(body)],
    ['zstd', zstdCompressSync(body)],
  ] as const) {
    it(`decodes ${coding} arriving in pieces to the original bytes`, async () => {
      assert.ok((await read(decodeStream(coding, arriving(encoded)))).equals(body));
    });
  }

  it('ends with an error on bytes that do not decode, and on a body cut short', async () => {
    await assert.rejects(read(decodeStream('gzip', arriving(Buffer.from('not gzip at all'.repeat(100))))));
    const cut = gzipSync(body).subarray(0, 200);
    const source = new Readable({ read() {} });
    const decoded = read(decodeStream('gzip', source));
    source.push(cut);
    source.destroy(new Error('origin reset'));
    await assert.rejects(decoded);
  });
});
