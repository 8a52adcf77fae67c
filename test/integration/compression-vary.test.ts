/**
 * Variants of one URL that the node does not compress (one client's, by `Vary: Cookie` and the
 * cookie sent; smaller than compression.minSize) beside variants it does: all are stored under
 * the same Vary fields (Accept-Encoding added), so none replaces the others, and every one of them
 * stays a hit. The uncompressed ones are served as identity to every bucket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gzipSync } from 'node:zlib';
import { createClock } from '../helpers/clock.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const page = (who: string) => `<p>${who}: ${'a page of text, compressible. '.repeat(100)}</p>`;
const LONG = `/members/area/${'section/'.repeat(8)}index.html?view=full&lang=en-GB`;
const PATH = LONG.split('?')[0]!;

describe('compression: uncompressed variants beside compressed ones', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      // One page per session cookie, one for the anonymous.
      [PATH]: (req, res) => {
        const body = page(req.headers.cookie ?? 'anonymous');
        res.writeHead(200, {
          'cache-control': 'public, max-age=600',
          'content-type': 'text/html',
          'content-length': String(Buffer.byteLength(body)),
          vary: 'Cookie',
        });
        res.end(body);
      },
      // English is short (under minSize), German long.
      '/greeting': (req, res) => {
        const body = req.headers['accept-language'] === 'en' ? 'Hello.' : page('Hallo');
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          'content-type': 'text/html',
          'content-length': String(Buffer.byteLength(body)),
          vary: 'Accept-Language',
        });
        res.end(body);
      },
      // A 404 for one language, a page for the others.
      '/localized': (req, res) => {
        const missing = req.headers['accept-language'] === 'xx';
        const body = missing ? 'no such language' : page('localized');
        res.writeHead(missing ? 404 : 200, {
          'cache-control': 'max-age=600',
          'content-type': 'text/html',
          'content-length': String(Buffer.byteLength(body)),
          vary: 'Accept-Language',
        });
        res.end(body);
      },
      // An image for clients that take one, a page for the others.
      '/figure': (req, res) => {
        const image = String(req.headers.accept).startsWith('image/');
        const body = image ? Buffer.alloc(4000, 7) : Buffer.from(page('figure'));
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          'content-type': image ? 'image/png' : 'text/html',
          'content-length': String(body.length),
          vary: 'Accept',
        });
        res.end(body);
      },
      '/plain': (_req, res) => {
        const body = page('plain');
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          'content-type': 'text/html',
          'content-length': String(Buffer.byteLength(body)),
        });
        res.end(body);
      },
      // Small, with an entity tag: revalidated once stale.
      '/small-tagged': (req, res) => {
        const head = {
          'cache-control': 'max-age=60',
          'content-type': 'text/plain',
          etag: '"t1"',
          vary: 'Abc',
        };
        if (req.headers['if-none-match'] === '"t1"') {
          res.writeHead(304, head);
          res.end();
          return;
        }
        res.writeHead(200, { ...head, 'content-length': '5' });
        res.end('small');
      },
      // The origin compresses itself for gzip requests.
      '/own-gzip': (req, res) => {
        const body = Buffer.from(page(req.headers.cookie ?? 'anonymous'));
        const gzip = /gzip/.test(String(req.headers['accept-encoding']));
        const sent = gzip ? gzipSync(body) : body;
        res.writeHead(200, {
          'cache-control': 'public, max-age=600',
          'content-type': 'text/html',
          'content-length': String(sent.length),
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
          vary: 'Cookie',
        });
        res.end(sent);
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const get = (path: string, headers: Record<string, string>) => edge.get(path, { headers });

  it('keeps the variant of a session (not compressed) and the anonymous one (compressed) side by side', async () => {
    const before = origin.count(LONG);
    const anonymous = { 'accept-encoding': 'gzip, br' };
    const member = { 'accept-encoding': 'gzip, br', cookie: 'session=s3cr3t' };
    for (let round = 0; round < 3; round++) {
      const a = await get(LONG, anonymous);
      assert.equal(a.headers['content-encoding'], 'br');
      assert.equal(brotliDecompressSync(a.body).toString(), page('anonymous'));
      const m = await get(LONG, member);
      assert.equal(m.headers['content-encoding'], undefined, 'one client’s variant is never compressed');
      assert.equal(m.text, page('session=s3cr3t'));
      // The same identity bytes to every bucket: the Vary clients see is the origin's.
      assert.equal(m.headers.vary, 'Cookie');
      if (round > 0) {
        assert.match(String(a.headers['cache-status']), /^strata; hit/);
        assert.match(String(m.headers['cache-status']), /^strata; hit/);
      }
    }
    // Every bucket of the session gets the one identity variant, stored once.
    for (const encoding of ['gzip', 'zstd', 'identity']) {
      const m = await get(LONG, { ...member, 'accept-encoding': encoding });
      assert.equal(m.headers['content-encoding'], undefined, encoding);
      assert.equal(m.text, page('session=s3cr3t'));
      assert.match(String(m.headers['cache-status']), /^strata; hit/, encoding);
    }
    assert.equal(origin.count(LONG) - before, 2);
  });

  it('keeps a variant under minSize beside the compressed ones', async () => {
    const before = origin.count('/greeting');
    for (let round = 0; round < 3; round++) {
      const de = await get('/greeting', { 'accept-encoding': 'br', 'accept-language': 'de' });
      assert.equal(de.headers['content-encoding'], 'br');
      assert.equal(brotliDecompressSync(de.body).toString(), page('Hallo'));
      const en = await get('/greeting', { 'accept-encoding': 'br', 'accept-language': 'en' });
      assert.equal(en.headers['content-encoding'], undefined);
      assert.equal(en.text, 'Hello.');
      assert.equal(en.headers['content-length'], '6');
      assert.equal(en.headers.vary, 'Accept-Language');
      if (round > 0) {
        assert.match(String(de.headers['cache-status']), /^strata; hit/);
        assert.match(String(en.headers['cache-status']), /^strata; hit/);
      }
    }
    assert.equal(origin.count('/greeting') - before, 2);
  });

  it('keeps a 404 or an image variant beside the compressed ones', async () => {
    const cases = [
      { path: '/localized', field: 'accept-language', compressed: 'de', other: 'xx', status: 404 },
      { path: '/figure', field: 'accept', compressed: 'text/html', other: 'image/png', status: 200 },
    ];
    for (const { path, field, compressed, other, status } of cases) {
      const before = origin.count(path);
      for (let round = 0; round < 3; round++) {
        const coded = await get(path, { 'accept-encoding': 'gzip, br', [field]: compressed });
        assert.equal(coded.headers['content-encoding'], 'br', path);
        const plain = await get(path, { 'accept-encoding': 'gzip, br', [field]: other });
        assert.equal(plain.status, status, path);
        assert.equal(plain.headers['content-encoding'], undefined, path);
        assert.equal(plain.headers.vary, field === 'accept' ? 'Accept' : 'Accept-Language');
        if (round > 0) {
          assert.match(String(coded.headers['cache-status']), /^strata; hit/, path);
          assert.match(String(plain.headers['cache-status']), /^strata; hit/, path);
        }
      }
      // Every bucket gets the one uncompressed variant, as it is.
      const gzip = await get(path, { 'accept-encoding': 'gzip', [field]: other });
      assert.equal(gzip.headers['content-encoding'], undefined, path);
      assert.match(String(gzip.headers['cache-status']), /^strata; hit/, path);
      assert.equal(origin.count(path) - before, 2, path);
    }
  });

  it('revalidates a stale uncompressed variant for any bucket, with the origin’s Vary', async () => {
    const first = await get('/small-tagged', { abc: '123' });
    assert.equal(first.headers.vary, 'Abc');
    const fresh = await get('/small-tagged', { abc: '123', 'accept-encoding': 'gzip, br' });
    assert.equal(fresh.text, 'small');
    assert.equal(fresh.headers.vary, 'Abc');
    assert.match(String(fresh.headers['cache-status']), /^strata; hit/);
    clock.advance(120);
    const stale = await get('/small-tagged', { abc: '123', 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(stale.status, 200);
    assert.equal(stale.text, 'small');
    assert.equal(stale.headers['content-encoding'], undefined);
    assert.equal(stale.headers.vary, 'Abc');
    assert.match(String(stale.headers['cache-status']), /fwd=stale; fwd-status=304/);
    assert.equal(
      origin.requests.filter((r) => r.path === '/small-tagged').at(-1)?.headers['if-none-match'],
      '"t1"',
    );
    assert.equal(origin.count('/small-tagged'), 2);
  });

  it('stores the answer to a field no bucket satisfies as its own variant, beside the identity entry and its codings', async () => {
    const before = origin.count('/plain');
    await get('/plain', {});
    const br = await get('/plain', { 'accept-encoding': 'br' });
    assert.equal(br.headers['content-encoding'], 'br');
    const counters = await metricsDelta(edge.node.metrics.registry);
    for (let i = 0; i < 3; i++) {
      const odd = await get('/plain', { 'accept-encoding': 'deflate, identity;q=0' });
      assert.equal(odd.status, 200);
      assert.equal(odd.text, page('plain'));
      assert.equal(odd.headers.vary, 'Accept-Encoding');
      if (i > 0) assert.match(String(odd.headers['cache-status']), /^strata; hit/);
    }
    // The identity entry and its br coding were left as they were: hits, no coding made again.
    const again = await get('/plain', { 'accept-encoding': 'br' });
    assert.equal(again.headers['content-encoding'], 'br');
    assert.match(String(again.headers['cache-status']), /^strata; hit/);
    assert.equal((await counters.delta())['strata_compressions_total{coding="br"}'], undefined);
    const plain = await get('/plain', {});
    assert.match(String(plain.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/plain') - before, 2);
  });

  it("does not compress one client's variant decoded from the origin's own coding", async () => {
    const member = { cookie: 'session=s3cr3t' };
    const gzip = await get('/own-gzip', { ...member, 'accept-encoding': 'gzip' });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    const br = await get('/own-gzip', { ...member, 'accept-encoding': 'br' });
    assert.equal(br.headers['content-encoding'], undefined);
    assert.equal(br.text, page('session=s3cr3t'));
  });
});
