import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gzipSync } from 'node:zlib';
import { Evictor } from '../../src/cache/eviction.ts';
import { createClock } from '../helpers/clock.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { startAdminNode } from './purge-support.ts';

const BR = { 'accept-encoding': 'gzip, deflate, br' };
const text = Buffer.from('<p>Strata compresses at the edge, once per object and coding.</p>\n'.repeat(200));
const html = (extra: Record<string, string> = {}) =>
  respond(
    200,
    {
      'cache-control': 'max-age=60',
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(text.length),
      etag: '"page-1"',
      ...extra,
    },
    text,
  );
const LONG = `/news/2026/12/02/${'a-headline-long-enough-to-matter-'.repeat(4)}story.html`;

describe('compression: the correctness matrix', () => {
  let origin: TestOrigin;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/plain': html(),
      [LONG]: html(),
      '/no-transform': html({ 'cache-control': 'max-age=60, no-transform' }),
      '/vary-lang': html({ vary: 'Accept-Language' }),
      '/vary-cookie': html({ vary: 'Cookie' }),
      [`${LONG}?shared=cookie`]: html(),
      '/tagged': html({ 'surrogate-key': 'front news' }),
      '/image': respond(
        200,
        { 'cache-control': 'max-age=60', 'content-type': 'image/png', 'content-length': String(text.length) },
        text,
      ),
      '/pre-gzipped': (req, res) => {
        const gzip = /gzip/.test(String(req.headers['accept-encoding']));
        const body = gzip ? gzipSync(text) : text;
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          'content-type': 'text/html',
          'content-length': String(body.length),
          vary: 'Accept-Encoding',
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        });
        res.end(body);
      },
      '/revalidated': (req, res) => {
        if (req.headers['if-none-match'] === '"rev-1"') {
          res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"rev-1"' });
          return res.end();
        }
        html({ etag: '"rev-1"' })(req, res, 0);
      },
    });
  });
  after(() => origin.close());

  it('never compresses on a hit: compressions run once per object and coding (metrics and /stats)', async () => {
    const edge = await startAdminNode({ origin: origin.url, now: clock.now });
    try {
      const first = await edge.get(LONG, { headers: BR });
      assert.equal(first.headers['content-encoding'], 'br');
      const counters = await metricsDelta(edge.node.metrics.registry);
      for (let i = 0; i < 20; i++) {
        const hit = await edge.get(LONG, { headers: BR });
        assert.match(String(hit.headers['cache-status']), /^strata; hit/);
        assert.ok(brotliDecompressSync(hit.body).equals(text));
      }
      const delta = await counters.delta();
      assert.equal(delta['strata_compressions_total{coding="br"}'], undefined);
      assert.equal(delta['strata_cache_lookups_total{result="hit"}'], 20);
      assert.equal(origin.count(LONG), 1);
      const stats = JSON.parse((await edge.call('GET', '/stats')).text).compression;
      assert.deepEqual(stats.compressions, { br: 1 });
      assert.ok(stats.bytesSaved.br > text.length / 2, `saved ${stats.bytesSaved.br} of ${text.length}`);
      assert.equal(stats.queue, 0);
    } finally {
      await edge.close();
    }
  });

  it('follows q-values: a client preferring identity gets identity, gzip over br when weighed so', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const identity = await edge.get('/plain', { headers: { 'accept-encoding': 'br;q=0.5, identity' } });
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(text));
      const gzip = await edge.get('/plain', { headers: { 'accept-encoding': 'br;q=0.5, gzip;q=0.9' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      const none = await edge.get('/plain', { headers: { 'accept-encoding': 'gzip;q=0, br;q=0' } });
      assert.equal(none.headers['content-encoding'], undefined);
      assert.equal(origin.count('/plain'), 1);
    } finally {
      await edge.close();
    }
  });

  it('does not compress a response with no-transform or of an incompressible type', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      for (const path of ['/no-transform', '/image']) {
        const res = await edge.get(path, { headers: BR });
        assert.equal(res.headers['content-encoding'], undefined, path);
        assert.ok(res.body.equals(text), path);
        assert.equal(res.headers.vary, undefined, path);
      }
    } finally {
      await edge.close();
    }
  });

  it('merges Accept-Encoding into the origin Vary once, on identity and compressed answers', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const lang = { 'accept-language': 'en' };
      const identity = await edge.get('/vary-lang', { headers: lang });
      const br = await edge.get('/vary-lang', { headers: { ...lang, ...BR } });
      const again = await edge.get('/vary-lang', { headers: { ...lang, ...BR } });
      for (const res of [identity, br, again])
        assert.equal(res.headers.vary, 'Accept-Language, Accept-Encoding');
      assert.equal(br.headers['content-encoding'], 'br');
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/vary-lang'), 1);
    } finally {
      await edge.close();
    }
  });

  it('stores an origin-encoded body as it came, and decodes it for identity beside it', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const gzip = await edge.get('/pre-gzipped', { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.ok(gzipSync(text).equals(gzip.body));
      const again = await edge.get('/pre-gzipped', { headers: { 'accept-encoding': 'gzip' } });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.ok(gzipSync(text).equals(again.body));
      const identity = await edge.get('/pre-gzipped');
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(text));
      assert.equal(origin.count('/pre-gzipped'), 1);
    } finally {
      await edge.close();
    }
  });

  it('keeps the suffixed ETag of a coding after a 304 and revalidates with the origin tag', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const br = await edge.get('/revalidated', { headers: BR });
      assert.equal(br.headers.etag, '"rev-1-br"');
      clock.advance(61_000);
      const refreshed = await edge.get('/revalidated', { headers: BR });
      assert.equal(refreshed.status, 200);
      assert.equal(refreshed.headers['content-encoding'], 'br');
      assert.equal(refreshed.headers.etag, '"rev-1-br"');
      assert.ok(brotliDecompressSync(refreshed.body).equals(text));
      const asked = origin.requests
        .filter((r) => r.path === '/revalidated')
        .map((r) => r.headers['if-none-match']);
      assert.deepEqual(asked, [undefined, '"rev-1"']);
      const hit = await edge.get('/revalidated', { headers: BR });
      assert.equal(hit.headers.etag, '"rev-1-br"');
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      const conditional = await edge.get('/revalidated', {
        headers: { ...BR, 'if-none-match': '"rev-1-br"' },
      });
      assert.equal(conditional.status, 304);
      assert.equal(origin.count('/revalidated'), 2);
    } finally {
      await edge.close();
    }
  });

  it('answers a Range of the br representation from its stored bytes, and HEAD with the same length', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/plain');
      const whole = await edge.get('/plain', { headers: BR });
      const length = whole.body.length;
      assert.equal(Number(whole.headers['content-length']), length);
      const part = await edge.get('/plain', { headers: { ...BR, range: 'bytes=10-19' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes 10-19/${length}`);
      assert.equal(part.headers['content-encoding'], 'br');
      assert.ok(part.body.equals(whole.body.subarray(10, 20)));
      const ifRange = await edge.get('/plain', {
        headers: { ...BR, range: 'bytes=0-4', 'if-range': String(whole.headers.etag) },
      });
      assert.equal(ifRange.status, 206);
      const head = await edge.get('/plain', { method: 'HEAD', headers: BR });
      assert.equal(head.headers['content-encoding'], 'br');
      assert.equal(Number(head.headers['content-length']), length);
      assert.equal(origin.count('/plain') - before, 1);
    } finally {
      await edge.close();
    }
  });

  it('answers 406 without asking the origin when no coding and not identity is acceptable', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count(LONG);
      for (const value of ['identity;q=0', '*;q=0', 'gzip;q=0, br;q=0, identity;q=0']) {
        const res = await edge.get(LONG, { headers: { 'accept-encoding': value } });
        assert.equal(res.status, 406, value);
        // RFC 9211 §2.2: never forwarded, so no `fwd`.
        assert.equal(res.headers['cache-status'], 'strata; detail=not-acceptable', value);
      }
      assert.equal(origin.count(LONG) - before, 0);
      const br = await edge.get(LONG, { headers: { 'accept-encoding': 'br, identity;q=0' } });
      assert.equal(br.status, 200);
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(origin.count(LONG) - before, 1);
    } finally {
      await edge.close();
    }
  });

  it('does not compress a variant kept per Cookie unless the site opts in (BREACH)', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const res = await edge.get('/vary-cookie', { headers: { ...BR, cookie: 'session=secret' } });
      assert.equal(res.headers['content-encoding'], undefined);
      assert.ok(res.body.equals(text));
    } finally {
      await edge.close();
    }
  });

  it('compresses an object stored for everyone though the request that filled it had a cookie', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    const path = `${LONG}?shared=cookie`;
    try {
      // A browser with an analytics cookie fills it; nothing in the response is that browser's.
      const first = await edge.get(path, { headers: { ...BR, cookie: '_ga=GA1.2.3456789.1234567890' } });
      assert.equal(first.headers['content-encoding'], 'br');
      assert.ok(brotliDecompressSync(first.body).equals(text));
      const other = await edge.get(path, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(other.headers['content-encoding'], 'gzip');
      assert.match(String(other.headers.vary), /accept-encoding/i);
      assert.equal(origin.count(path), 1);
    } finally {
      await edge.close();
    }
  });

  it('removes every representation with a purge by tag (store back to 0 entries)', async () => {
    const edge = await startAdminNode({ origin: origin.url, now: clock.now });
    try {
      for (const coding of ['gzip', 'br', 'zstd', 'identity'])
        await edge.get('/tagged', { headers: { 'accept-encoding': coding } });
      assert.equal(origin.count('/tagged'), 1);
      assert.equal([...edge.node.store.tagged('front')].length, 4);
      const result = await edge.purge({ tags: ['front'] });
      assert.equal(result.purged, 4);
      assert.equal(edge.node.store.usage().entries, 0);
      const after = await edge.get('/tagged', { headers: BR });
      assert.match(String(after.headers['cache-status']), /fwd=miss/);
      assert.equal(origin.count('/tagged'), 2);
    } finally {
      await edge.close();
    }
  });

  it('evicts the representations of one object together, and no other variant with them', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/vary-lang');
      for (const language of ['en', 'de']) {
        for (const coding of ['identity', 'br', 'gzip'])
          await edge.get('/vary-lang', {
            headers: { 'accept-encoding': coding, 'accept-language': language },
          });
        clock.advance(1);
      }
      assert.equal(origin.count('/vary-lang') - before, 2);
      const store = edge.node.store;
      assert.equal(store.usage().entries, 6);
      await store.flushAccess();
      const log = { info() {}, error() {} } as unknown as ConstructorParameters<typeof Evictor>[1]['log'];
      // One byte over the target: the least recently used variant goes, and its siblings with it.
      await new Evictor(store, { maxSize: 1, log }).evictTo(store.usage().bytes - 1);
      assert.equal(store.usage().entries, 3);
      const en = await edge.get('/vary-lang', { headers: { ...BR, 'accept-language': 'en' } });
      assert.match(String(en.headers['cache-status']), /fwd=vary-miss/);
      const de = await edge.get('/vary-lang', { headers: { ...BR, 'accept-language': 'de' } });
      assert.match(String(de.headers['cache-status']), /^strata; hit/);
      assert.equal(de.headers['content-encoding'], 'br');
      assert.ok(brotliDecompressSync(de.body).equals(text));
      assert.equal(origin.count('/vary-lang') - before, 3);
    } finally {
      await edge.close();
    }
  });
});
