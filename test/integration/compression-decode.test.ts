/**
 * An origin that answers a coding the fill did not ask for (it ignores Accept-Encoding): the
 * body is decoded as it arrives, so every client of the bucket can read what is stored, and an
 * origin-encoded body never reaches a client of another bucket, Vary from the origin or not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib';
import { createClock } from '../helpers/clock.ts';
import { startNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const text = Buffer.from(
  '<li>an item of a long list the origin always gzips, asked or not</li>\n'.repeat(300),
);
const gzipped = gzipSync(text);
const ALWAYS = `/catalogue/${'nested-section/'.repeat(6)}always-gzipped-listing.html?sort=price&page=2`;

function alwaysGzip(etag: string, body: Buffer = gzipped, cacheControl = 'max-age=60') {
  return (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-encoding': 'gzip',
      'content-length': String(body.length),
      'cache-control': cacheControl,
      etag,
    });
    res.end(body);
  };
}

const UNTRANSFORMED = `/reports/${'quarterly-archive/'.repeat(5)}sales-export.html?region=emea&format=full`;

const STORED = `/assets/${'release-2026-12/'.repeat(5)}bundle.listing.html?v=4&lang=en`;

/** An origin that gzips for clients asking for gzip, and sends identity to the others. */
function gzipWhenAsked(etag: string, cacheControl = 'max-age=60') {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const gzip = /gzip/.test(String(req.headers['accept-encoding']));
    const body = gzip ? gzipped : text;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': cacheControl,
      vary: 'Accept-Encoding',
      etag,
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(body);
  };
}

/**
 * A route that answers a conditional request 304 when its If-None-Match names the tag (weak
 * comparison, RFC 9110 §13.1.2, as origins do), with its own strong tag; else `full`.
 */
function conditional(etag: string, full: ReturnType<typeof gzipWhenAsked>) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const tags = String(req.headers['if-none-match'] ?? '').split(/\s*,\s*/);
    if (tags.some((tag) => tag.replace(/^W\//, '') === etag)) {
      res.writeHead(304, { etag, 'cache-control': 'max-age=60' });
      res.end();
      return;
    }
    full(req, res);
  };
}

describe('compression: origin-encoded bodies for clients that cannot take them', () => {
  let origin: TestOrigin;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      [ALWAYS.split('?')[0]!]: alwaysGzip('"g-1"'),
      '/gzip-first': alwaysGzip('"g-2"'),
      [STORED.split('?')[0]!]: gzipWhenAsked('"g-4"'),
      '/concurrent': gzipWhenAsked('"g-5"'),
      '/no-transform': gzipWhenAsked('"g-6"', 'max-age=60, no-transform'),
      [UNTRANSFORMED.split('?')[0]!]: alwaysGzip('"g-9"', gzipped, 'public, max-age=60, no-transform'),
      '/revalidate-stored': conditional('"g-7"', gzipWhenAsked('"g-7"')),
      '/revalidate-arrived': conditional('"g-8"', alwaysGzip('"g-8"')),
      '/broken': alwaysGzip(
        '"g-3"',
        Buffer.from('these bytes are not gzip at all, however long they are'.repeat(30)),
      ),
    });
  });
  after(() => origin.close());

  it('decodes it for identity and br-only clients, each of them from one origin request', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const identity = await edge.get(ALWAYS);
      assert.equal(identity.status, 200);
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(text));
      assert.equal(identity.headers.etag, 'W/"g-1"');
      assert.match(String(identity.headers.vary), /Accept-Encoding/);
      const br = await edge.get(ALWAYS, { headers: { 'accept-encoding': 'br' } });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.ok(brotliDecompressSync(br.body).equals(text));
      assert.equal(br.headers.etag, 'W/"g-1-br"');
      const gzip = await edge.get(ALWAYS, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.ok(gunzipSync(gzip.body).equals(text));
      const again = await edge.get(ALWAYS);
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.ok(again.body.equals(text));
      assert.equal(origin.count(ALWAYS), 1);
    } finally {
      await edge.close();
    }
  });

  it('never hands a body stored in gzip to a client of another bucket, though the origin sent no Vary', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const gzip = await edge.get('/gzip-first', { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.ok(gzip.body.equals(gzipped));
      assert.equal(gzip.headers.etag, '"g-2"');
      assert.match(String(gzip.headers.vary), /Accept-Encoding/);
      const identity = await edge.get('/gzip-first');
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(text));
      const br = await edge.get('/gzip-first', { headers: { 'accept-encoding': 'br' } });
      assert.ok(brotliDecompressSync(br.body).equals(text));
      const hit = await edge.get('/gzip-first', { headers: { 'accept-encoding': 'gzip' } });
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.ok(hit.body.equals(gzipped));
    } finally {
      await edge.close();
    }
  });

  it('decodes a stored origin-encoded body for identity, br and zstd clients, with no second origin request', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const gzip = await edge.get(STORED, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.ok(gzip.body.equals(gzipped));
      const identity = await edge.get(STORED, { headers: { 'accept-encoding': 'identity' } });
      assert.match(String(identity.headers['cache-status']), /^strata; hit/);
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.equal(identity.headers['content-length'], String(text.length));
      assert.equal(identity.headers.etag, 'W/"g-4"');
      assert.ok(identity.body.equals(text));
      const br = await edge.get(STORED, { headers: { 'accept-encoding': 'br' } });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(br.headers.etag, 'W/"g-4-br"');
      assert.ok(brotliDecompressSync(br.body).equals(text));
      const zstd = await edge.get(STORED, { headers: { 'accept-encoding': 'zstd' } });
      assert.equal(zstd.headers['content-encoding'], 'zstd');
      assert.ok(zstdDecompressSync(zstd.body).equals(text));
      const again = await edge.get(STORED, { headers: { 'accept-encoding': 'identity' } });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.ok(again.body.equals(text));
      assert.equal(origin.count(STORED), 1);
      assert.equal(edge.node.store.usage().entries, 4);
    } finally {
      await edge.close();
    }
  });

  it('shares one decoding between concurrent clients of other buckets', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      await edge.get('/concurrent', { headers: { 'accept-encoding': 'gzip' } });
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          edge.get('/concurrent', { headers: { 'accept-encoding': i % 2 === 0 ? 'identity' : 'br' } }),
        ),
      );
      for (const [i, answer] of answers.entries()) {
        assert.equal(answer.status, 200);
        const body = i % 2 === 0 ? answer.body : brotliDecompressSync(answer.body);
        assert.ok(body.equals(text));
      }
      assert.equal(origin.count('/concurrent'), 1);
      assert.equal(edge.node.store.usage().entries, 3);
    } finally {
      await edge.close();
    }
  });

  it('revalidates a decoded identity, and a coding made from it, with one origin request each', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    const path = '/revalidate-stored';
    try {
      await edge.get(path, { headers: { 'accept-encoding': 'gzip' } });
      const decoded = await edge.get(path, { headers: { 'accept-encoding': 'identity' } });
      assert.equal(decoded.headers.etag, 'W/"g-7"');
      const br = await edge.get(path, { headers: { 'accept-encoding': 'br' } });
      assert.equal(br.headers.etag, 'W/"g-7-br"');
      assert.equal(origin.count(path), 1);
      clock.advance(61);
      // The weakened tag stands for the origin's: asked with "g-7", whose 304 selects it.
      const identity = await edge.get(path, { headers: { 'accept-encoding': 'identity' } });
      assert.equal(identity.status, 200);
      assert.match(String(identity.headers['cache-status']), /fwd=stale; fwd-status=304/);
      assert.equal(identity.headers.etag, 'W/"g-7"');
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(text));
      assert.equal(origin.count(path), 2);
      assert.equal(origin.requests.at(-1)!.headers['if-none-match'], '"g-7"');
      const stale = await edge.get(path, { headers: { 'accept-encoding': 'br' } });
      assert.match(String(stale.headers['cache-status']), /fwd=stale; fwd-status=304/);
      assert.equal(stale.headers.etag, 'W/"g-7-br"');
      assert.ok(brotliDecompressSync(stale.body).equals(text));
      assert.equal(origin.count(path), 3);
      const hit = await edge.get(path, { headers: { 'accept-encoding': 'identity' } });
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.ok(hit.body.equals(text));
      assert.equal(origin.count(path), 3);
    } finally {
      await edge.close();
    }
  });

  it('revalidates an identity decoded as it arrived with one origin request', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    const path = '/revalidate-arrived';
    try {
      const first = await edge.get(path);
      assert.equal(first.headers.etag, 'W/"g-8"');
      assert.ok(first.body.equals(text));
      clock.advance(61);
      const stale = await edge.get(path);
      assert.equal(stale.status, 200);
      assert.match(String(stale.headers['cache-status']), /fwd=stale; fwd-status=304/);
      assert.equal(stale.headers.etag, 'W/"g-8"');
      assert.equal(stale.headers['content-encoding'], undefined);
      assert.ok(stale.body.equals(text));
      assert.equal(origin.count(path), 2);
      assert.equal(origin.requests.at(-1)!.headers['if-none-match'], '"g-8"');
      const hit = await edge.get(path);
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(path), 2);
    } finally {
      await edge.close();
    }
  });

  it('asks the origin again when the stored coding may not be transformed (no-transform)', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const gzip = await edge.get('/no-transform', { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      const identity = await edge.get('/no-transform', { headers: { 'accept-encoding': 'identity' } });
      assert.match(String(identity.headers['cache-status']), /fwd=vary-miss/);
      assert.equal(origin.count('/no-transform'), 2);
    } finally {
      await edge.close();
    }
  });

  it('forwards and stores as it came a coding the origin sent unasked with no-transform', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      // RFC 9110 §7.7: a proxy must not transform such a response, decoding included.
      const identity = await edge.get(UNTRANSFORMED, { headers: { 'accept-encoding': 'identity' } });
      assert.equal(identity.status, 200);
      assert.equal(identity.headers['content-encoding'], 'gzip');
      assert.ok(identity.body.equals(gzipped));
      assert.equal(identity.headers.etag, '"g-9"');
      assert.equal(identity.headers['content-length'], String(gzipped.length));
      const again = await edge.get(UNTRANSFORMED, { headers: { 'accept-encoding': 'identity' } });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.ok(again.body.equals(gzipped));
      assert.equal(origin.count(UNTRANSFORMED), 1);
    } finally {
      await edge.close();
    }
  });

  it('stores nothing of a body that does not decode, and answers its client 502', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      // Nothing decoded, nothing sent: a 502 the client can read (cut short had a byte gone out).
      const first = await edge.get('/broken');
      assert.equal(first.status, 502);
      assert.match(String(first.headers['proxy-status']), /http_response_incomplete/);
      await edge.node.idle();
      await edge.get('/broken').catch(() => undefined);
      assert.equal(origin.count('/broken'), 2);
    } finally {
      await edge.close();
    }
  });
});
