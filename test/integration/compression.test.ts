import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { createClock } from '../helpers/clock.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/assets/application/${'bundle-segment/'.repeat(8)}release-notes.txt?build=2026-12-02&locale=en-GB`;

describe('Accept-Encoding negotiation', () => {
  let origin: TestOrigin;
  const clock = createClock();

  before(async () => {
    const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      res.writeHead(200, {
        'cache-control': 'max-age=3600',
        // Not a compressible type: the variants are what the origin chose per bucket.
        'content-type': 'application/octet-stream',
        vary: 'Accept-Encoding',
      });
      res.end(`asked=${req.headers['accept-encoding'] ?? '(none)'}`);
    };
    origin = await startOrigin({ '/negotiated': echo, [LONG.split('?')[0]!]: echo });
  });
  after(() => origin.close());

  for (const path of ['/negotiated', LONG]) {
    it(`shares one variant and one origin fetch between spellings of the same bucket (${path.length} chars)`, async () => {
      const edge = await startNode({ origin: origin.url, now: clock.now });
      try {
        const before = origin.count(path);
        const first = await edge.get(path, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
        assert.equal(first.status, 200);
        assert.equal(first.text, 'asked=br');
        assert.match(String(first.headers['cache-status']), /fwd=miss/);
        for (const value of ['gzip, br', 'BR', 'br;q=0.9, gzip;q=0.8', 'x-gzip, br']) {
          const again = await edge.get(path, { headers: { 'accept-encoding': value } });
          assert.equal(again.text, 'asked=br', value);
          assert.match(String(again.headers['cache-status']), /^strata; hit/, value);
        }
        assert.equal(origin.count(path) - before, 1);
      } finally {
        await edge.close();
      }
    });
  }

  it('asks the origin for the bucket only, so a client that weighs gzip higher never gets br', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/negotiated');
      const gzip = await edge.get('/negotiated', { headers: { 'accept-encoding': 'br;q=0.5, gzip' } });
      assert.equal(gzip.text, 'asked=gzip');
      const plain = await edge.get('/negotiated');
      assert.equal(plain.text, 'asked=identity');
      const empty = await edge.get('/negotiated', { headers: { 'accept-encoding': 'deflate' } });
      assert.equal(empty.text, 'asked=identity');
      assert.match(String(empty.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/negotiated') - before, 2);
      const seen = origin.requests
        .filter((r) => r.path === '/negotiated')
        .map((r) => r.headers['accept-encoding']);
      assert.deepEqual(seen.slice(-2), ['gzip', 'identity']);
    } finally {
      await edge.close();
    }
  });

  it('forwards a field no bucket satisfies as it came, as a variant of its own', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/negotiated');
      const none = await edge.get('/negotiated', { headers: { 'accept-encoding': 'deflate, identity;q=0' } });
      assert.equal(none.text, 'asked=deflate, identity;q=0');
      const plain = await edge.get('/negotiated', { headers: { 'accept-encoding': 'identity' } });
      assert.equal(plain.text, 'asked=identity');
      assert.equal(origin.count('/negotiated') - before, 2);
    } finally {
      await edge.close();
    }
  });
});

const DECODE: Record<string, (body: Buffer) => Buffer> = {
  identity: (body) => body,
  gzip: (body) => gunzipSync(body),
  br: (body) => brotliDecompressSync(body),
  zstd: (body) => zstdDecompressSync(body),
};
const CLIENT: Record<string, string> = {
  identity: 'identity',
  gzip: 'gzip, deflate',
  br: 'gzip, deflate, br',
  zstd: 'gzip, deflate, br, zstd',
};

/** Compressible JSON-ish text of exactly `size` bytes. */
function jsonBody(size: number): Buffer {
  const unit = Buffer.from('{"id":12345,"name":"strata edge node","tags":["cache","compression"]},\n');
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += unit.length) unit.copy(body, i, 0, Math.min(unit.length, size - i));
  return body;
}

describe('compression at the edge', () => {
  let origin: TestOrigin;
  const clock = createClock();
  const sizes: Array<[number, string[]]> = [
    [0, ['br', 'identity', 'zstd', 'gzip']],
    [1023, ['gzip', 'zstd', 'identity', 'br']],
    [100 * 1024, ['identity', 'gzip', 'br', 'zstd']],
    [100 * 1024 + 1, ['zstd', 'br', 'gzip', 'identity']],
    [5 * 1024 * 1024, ['br', 'gzip', 'identity', 'zstd']],
  ];
  const long = (size: number) => `/api/v2/catalogue/${'segment-of-a-long-path/'.repeat(5)}items-${size}.json`;

  before(async () => {
    origin = await startOrigin();
    for (const [size] of sizes) {
      const body = jsonBody(size);
      const route = respond(
        200,
        {
          'cache-control': 'max-age=3600',
          'content-type': 'application/json',
          'content-length': String(size),
          etag: `"v${size}"`,
        },
        body,
      );
      origin.route(`/c/${size}`, route);
      origin.route(long(size), route);
    }
  });
  after(() => origin.close());

  for (const [size, order] of sizes) {
    for (const path of [`/c/${size}`, long(size)]) {
      it(`serves ${order.join(', ')} clients of a ${size} B object (${path.length}-char URL) from one origin request, each its encoding`, async () => {
        const edge = await startNode({ origin: origin.url, now: clock.now });
        try {
          const expected = jsonBody(size);
          for (const round of [1, 2]) {
            for (const coding of order) {
              const res = await edge.get(path, { headers: { 'accept-encoding': CLIENT[coding]! } });
              const label = `${coding} round ${round}`;
              assert.equal(res.status, 200, label);
              const served = size >= 1024 ? coding : 'identity';
              assert.equal(
                res.headers['content-encoding'],
                served === 'identity' ? undefined : served,
                label,
              );
              assert.equal(Number(res.headers['content-length']), res.body.length, label);
              assert.ok(DECODE[served]!(res.body).equals(expected), label);
              // Announced under minSize: no coding will exist, so no Vary (and no variant split).
              if (size >= 1024) assert.match(String(res.headers.vary), /accept-encoding/i, label);
              else assert.equal(res.headers.vary, undefined, label);
              assert.equal(
                res.headers.etag,
                served === 'identity' ? `"v${size}"` : `"v${size}-${served}"`,
                label,
              );
              if (round === 2) assert.match(String(res.headers['cache-status']), /^strata; hit/, label);
            }
          }
          assert.equal(origin.count(path), 1);
        } finally {
          await edge.close();
        }
      });
    }
  }
});
