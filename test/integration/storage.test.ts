import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** A real-length path (over 100 characters) of a chunked body larger than maxObjectSize below. */
const OUTGROWS = `/media/exports/2026/${'quarterly-report-attachment-'.repeat(4)}full.tar?format=tar&part=1`;

/** A real-length path of a chunked body that crosses maxObjectSize in its last read. */
const CROSSES = `/downloads/${'nightly-build-'.repeat(6)}checksums.txt?channel=beta&arch=arm64`;

describe('the persistent store', () => {
  let origin: TestOrigin;
  const clock = createClock();
  const big = Buffer.alloc(200 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
  const outgrows = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < outgrows.length; i++) outgrows[i] = (i * 17) % 253;

  before(async () => {
    origin = await startOrigin({
      '/persist': respond(
        200,
        { 'cache-control': 'max-age=3600', 'content-type': 'text/plain' },
        'survives restarts',
      ),
      '/big': respond(200, { 'cache-control': 'max-age=3600' }, big),
      '/vary': (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=3600', vary: 'Accept-Encoding, Accept-Language' });
        res.end(`enc=${req.headers['accept-encoding'] ?? ''} lang=${req.headers['accept-language'] ?? ''}`);
      },
      '/vary-star': respond(200, { 'cache-control': 'max-age=3600', vary: '*' }, 'star'),
      '/too-large': respond(
        200,
        { 'cache-control': 'max-age=3600', 'content-length': String(64 * 1024) },
        Buffer.alloc(64 * 1024, 1),
      ),
      '/too-large-chunked': respond(200, { 'cache-control': 'max-age=3600' }, Buffer.alloc(64 * 1024, 2)),
      [OUTGROWS]: respond(200, { 'cache-control': 'max-age=3600' }, outgrows),
      // Exactly maxObjectSize (32 KiB below) in one read, then 1,000 bytes more in the last one.
      [CROSSES]: (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=3600' });
        res.write(Buffer.alloc(32 * 1024, 3));
        setTimeout(() => res.end(Buffer.alloc(1000, 4)), 50);
      },
    });
    for (let i = 0; i < 40; i++)
      origin.route(
        `/fill/${i}`,
        respond(200, { 'cache-control': 'max-age=3600' }, Buffer.alloc(8 * 1024, i)),
      );
  });
  after(() => origin.close());

  it('comes back warm after a restart', async () => {
    // The Host header is part of the key: both nodes are asked for the same site name.
    const host = { host: 'www.example.test' };
    const first = await startNode({ origin: origin.url, now: clock.now });
    await first.get('/persist', { headers: host });
    await first.get('/big', { headers: host });
    await first.close({ keepDir: true });
    const second = await startNode({ origin: origin.url, now: clock.now, dir: first.dir });
    try {
      const hit = await second.get('/persist', { headers: host });
      assert.equal(hit.text, 'survives restarts');
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      const bigHit = await second.get('/big', { headers: host });
      assert.ok(bigHit.body.equals(big));
      assert.match(String(bigHit.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/persist'), 1);
      assert.equal(origin.count('/big'), 1);
    } finally {
      await second.close();
    }
  });

  it('stores bodies larger than a chunk and serves them byte for byte, from LMDB and from memory', async () => {
    const edge = await startNode({
      origin: origin.url,
      now: clock.now,
      cache: { chunkSize: 16 * 1024, memoryObjectSize: 1024, memorySize: 4096 },
    });
    try {
      const miss = await edge.get('/big');
      assert.ok(miss.body.equals(big));
      const hit = await edge.get('/big');
      assert.ok(hit.body.equals(big), 'streamed from LMDB chunks');
      const range = await edge.get('/big', { headers: { range: 'bytes=16380-16390' } });
      assert.equal(range.status, 206);
      assert.ok(range.body.equals(big.subarray(16380, 16391)));
      assert.equal(origin.count('/big'), 2);
    } finally {
      await edge.close();
    }
  });

  it('keeps one variant per normalized Vary value and never matches Vary: *', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const counters = await metricsDelta(edge.node.metrics.registry);
      await edge.get('/vary', { headers: { 'accept-encoding': 'gzip, br', 'accept-language': 'en' } });
      const same = await edge.get('/vary', {
        headers: { 'accept-encoding': 'BR,gzip', 'accept-language': 'en' },
      });
      assert.match(String(same.headers['cache-status']), /^strata; hit/);
      // The origin is asked for the request's Accept-Encoding bucket, not the client's spelling.
      assert.equal(same.text, 'enc=br lang=en');
      const other = await edge.get('/vary', {
        headers: { 'accept-encoding': 'gzip, br', 'accept-language': 'fr' },
      });
      assert.match(String(other.headers['cache-status']), /fwd=vary-miss/);
      assert.equal(other.text, 'enc=br lang=fr');
      const both = await edge.get('/vary', {
        headers: { 'accept-encoding': 'gzip, br', 'accept-language': 'en' },
      });
      assert.match(String(both.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/vary'), 2);
      assert.equal((await counters.delta())['strata_cache_inserts_total{outcome="stored"}'], 2);
      assert.equal(edge.node.store.usage().entries, 2);
      await edge.get('/vary-star');
      const star = await edge.get('/vary-star');
      assert.match(String(star.headers['cache-status']), /detail=vary-star/);
      assert.equal(origin.count('/vary-star'), 2);
    } finally {
      await edge.close();
    }
  });

  it('never shares a response that varies on the client address the node forwards', async () => {
    // The node writes X-Forwarded-For and Forwarded itself, from each client's address: a
    // response varying on them was made for one client (a page by the visitor's address).
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      for (const vary of ['X-Forwarded-For', 'Accept-Language, forwarded']) {
        const path = `/stores/${'nearest-branch-opening-hours-'.repeat(4)}list.html?vary=${vary.length}`;
        assert.ok(path.length > 100);
        origin.route(path, (req, res) => {
          res.writeHead(200, { 'cache-control': 'public, max-age=3600', vary, 'content-type': 'text/html' });
          res.end(`<p>branches near ${req.headers['x-forwarded-for']}</p>`);
        });
        const alice = await edge.get(path, { localAddress: '127.0.0.2' });
        assert.equal(alice.text, '<p>branches near 127.0.0.2</p>');
        assert.match(String(alice.headers['cache-status']), /detail=vary-client/);
        const bob = await edge.get(path, { localAddress: '127.0.0.3' });
        assert.equal(bob.text, '<p>branches near 127.0.0.3</p>', vary);
        assert.equal(origin.count(path), 2);
      }
    } finally {
      await edge.close();
    }
  });

  it('never shares a page whose origin separated private and no-store with a space', async () => {
    // `Cache-Control: private no-cache` (a missing comma) was read as one junk member: nothing
    // restricted the response, Last-Modified gave it a heuristic day, and Bob got Alice's page.
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      for (const cacheControl of ['private no-cache', 'max-age=600, private no-store']) {
        const path = `/account/${'payment-methods-and-addresses-'.repeat(3)}cards.html?cc=${cacheControl.length}`;
        assert.ok(path.length > 100);
        let served = 0;
        origin.route(path, (_req, res) => {
          served++;
          res.writeHead(200, {
            'cache-control': cacheControl,
            'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
            'content-type': 'text/html',
          });
          res.end(`<p>cards of account ${served}</p>`);
        });
        const alice = await edge.get(path, { headers: { cookie: 'session=alice' } });
        assert.equal(alice.text, '<p>cards of account 1</p>');
        assert.match(String(alice.headers['cache-status']), /detail=(private|no-store)$/, cacheControl);
        const bob = await edge.get(path, { headers: { cookie: 'session=bob' } });
        assert.equal(bob.text, '<p>cards of account 2</p>', cacheControl);
      }
    } finally {
      await edge.close();
    }
  });

  it('passes objects over maxObjectSize through unstored', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now, cache: { maxObjectSize: 32 * 1024 } });
    const counters = await metricsDelta(edge.node.metrics.registry);
    try {
      const first = await edge.get('/too-large');
      assert.equal(first.body.length, 64 * 1024);
      assert.match(String(first.headers['cache-status']), /detail=too-large/);
      await edge.get('/too-large');
      assert.equal(origin.count('/too-large'), 2);
      // Without Content-Length the size is known only on the way: storing stops at the limit.
      const chunked = await edge.get('/too-large-chunked');
      assert.ok(chunked.body.equals(Buffer.alloc(64 * 1024, 2)));
      assert.ok(chunked.complete);
      await edge.get('/too-large-chunked');
      assert.equal(origin.count('/too-large-chunked'), 2);
      // Crossing the bound in the last read of the body: not stored either.
      const crossing = await edge.get(CROSSES);
      assert.equal(crossing.body.length, 32 * 1024 + 1000);
      assert.ok(crossing.complete);
      await edge.get(CROSSES);
      assert.equal(origin.count(CROSSES), 2);
      assert.equal((await counters.delta())['strata_cache_inserts_total{outcome="stored"}'], undefined);
      assert.equal(edge.node.store.usage().entries, 0);
    } finally {
      await edge.close();
    }
  });

  it('regression: a chunked body outgrowing a maxObjectSize below memoryObjectSize reaches its client whole', async () => {
    // Storing stopped past 1 MiB while the fill still held the body whole for the memory tier
    // (4 MiB): those held chunks counted as a reader lagging, the origin was paused for good and
    // the client waited forever.
    const edge = await startNode({ origin: origin.url, now: clock.now, cache: { maxObjectSize: '1MiB' } });
    try {
      const first = await edge.get(OUTGROWS, { timeoutMs: 10_000 });
      assert.equal(first.status, 200);
      assert.ok(first.complete);
      assert.ok(first.body.equals(outgrows));
      assert.match(String(first.headers['cache-status']), /^strata; fwd=miss; fwd-status=200/);
      const again = await edge.get(OUTGROWS, { timeoutMs: 10_000 });
      assert.ok(again.body.equals(outgrows));
      assert.equal(origin.count(OUTGROWS), 2);
      assert.equal(edge.node.store.usage().entries, 0);
    } finally {
      await edge.close();
    }
  });

  it('evicts least recently used entries to stay under maxSize', async () => {
    const maxSize = 128 * 1024;
    const edge = await startNode({
      origin: origin.url,
      now: clock.now,
      cache: { maxSize, maxObjectSize: 32 * 1024 },
    });
    const counters = await metricsDelta(edge.node.metrics.registry);
    try {
      for (let i = 0; i < 40; i++) {
        await edge.get(`/fill/${i}`);
        clock.advance(1);
        if (i % 5 === 4) await edge.node.evict();
      }
      await edge.node.evict();
      const { bytes } = edge.node.store.usage();
      assert.ok(bytes <= maxSize, `store holds ${bytes} bytes, over ${maxSize}`);
      const delta = await counters.delta();
      assert.equal(delta['strata_cache_inserts_total{outcome="stored"}'], 40);
      assert.equal(
        delta.strata_evictions_total,
        40 - edge.node.store.usage().entries,
        'every evicted variant counted',
      );
      const recent = await edge.get('/fill/39');
      assert.match(String(recent.headers['cache-status']), /^strata; hit/);
      const oldest = await edge.get('/fill/0');
      assert.match(String(oldest.headers['cache-status']), /fwd=miss/);
    } finally {
      await edge.close();
    }
  });

  it('keeps serving when the store refuses writes: hits go on, misses pass through', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      await edge.get('/persist');
      edge.node.store.writeFailed(new Error('MDB_MAP_FULL: Environment mapsize limit reached'));
      const hit = await edge.get('/persist');
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      const miss = await request(`${edge.url}/big`);
      assert.ok(miss.body.equals(big));
      assert.match(String(miss.headers['cache-status']), /detail=store-unavailable/);
      clock.advance(31);
      const stored = await edge.get('/fill/1');
      assert.match(String(stored.headers['cache-status']), /stored/);
    } finally {
      await edge.close();
    }
  });
});
