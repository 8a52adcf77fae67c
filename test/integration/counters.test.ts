import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** The counters an operator watches, asserted as varnishtest asserts its counters. */
describe('counters', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const swrLong = `/news/${'stale-while-revalidate-'.repeat(5)}front-page.html?edition=evening&region=north`;
  let swrVersion = 0;
  const long = `/catalogue/products/${'spring-collection-'.repeat(6)}item-4711.html?colour=blue&size=m`;

  before(async () => {
    origin = await startOrigin({
      [long]: respond(200, { 'cache-control': 'max-age=60' }, 'product page'),
      '/pass': respond(200, { 'cache-control': 'no-store' }, 'never stored'),
      '/revalidate': (req, res) => {
        res.writeHead(req.headers['if-none-match'] === '"r1"' ? 304 : 200, {
          'cache-control': 'max-age=1',
          etag: '"r1"',
        });
        res.end(req.headers['if-none-match'] === undefined ? 'validated' : undefined);
      },
      [swrLong]: (_req, res) => {
        swrVersion++;
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=60' });
        res.end(`version ${swrVersion}`);
      },
      '/swr-304': (req, res) => {
        res.writeHead(req.headers['if-none-match'] === '"s1"' ? 304 : 200, {
          'cache-control': 'max-age=10, stale-while-revalidate=60',
          etag: '"s1"',
        });
        res.end(req.headers['if-none-match'] === undefined ? 'validated in the background' : undefined);
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('counts a miss that stores, then a hit, with one origin request', async () => {
    assert.ok(long.length > 100);
    const counters = await metricsDelta(edge.node.metrics.registry);
    assert.equal((await edge.get(long)).headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    const hit = await edge.get(long);
    assert.equal(hit.text, 'product page');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(long), 1);
    assert.deepEqual(await counters.delta(), {
      'strata_cache_lookups_total{result="miss"}': 1,
      'strata_cache_lookups_total{result="hit"}': 1,
      'strata_cache_inserts_total{outcome="stored"}': 1,
      // Its commit, made at once: the test waited for it (edge.get).
      'strata_cache_commit_transactions_total{trigger="waited"}': 1,
      'strata_origin_requests_total{origin="origin",outcome="2xx"}': 1,
      'strata_bytes_served_total{source="origin"}': 12,
      'strata_bytes_served_total{source="cache"}': 12,
      'strata_requests_total{site="default",status="2xx"}': 2,
      // The hit brought the body to the memory tier.
      strata_memory_tier_bodies: 1,
      strata_memory_tier_bytes: 12,
    });
  });

  it('counts an uncacheable response as not storable, with its reason', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    await edge.get('/pass');
    await edge.get('/pass');
    const delta = await counters.delta();
    assert.equal(origin.count('/pass'), 2);
    assert.equal(delta['strata_cache_inserts_total{outcome="not-storable:no-store"}'], 2);
    assert.equal(delta['strata_origin_requests_total{origin="origin",outcome="2xx"}'], 2);
  });

  it('counts a revalidation that updates the stored entry', async () => {
    await edge.get('/revalidate');
    clock.advance(5);
    const counters = await metricsDelta(edge.node.metrics.registry);
    const again = await edge.get('/revalidate');
    assert.equal(again.text, 'validated');
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_lookups_total{result="revalidated"}'], 1);
    assert.equal(delta['strata_cache_inserts_total{outcome="updated"}'], 1);
  });

  it('counts what a background revalidation stores in the insert metrics', async () => {
    assert.ok(swrLong.length > 100);
    assert.equal((await edge.get(swrLong)).text, 'version 1');
    clock.advance(15);
    const counters = await metricsDelta(edge.node.metrics.registry);
    const stale = await edge.get(swrLong); // resolves once the background work is done
    assert.equal(stale.text, 'version 1');
    assert.match(String(stale.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(swrLong), 2);
    assert.deepEqual(await counters.delta(), {
      'strata_cache_lookups_total{result="stale-while-revalidate"}': 1,
      'strata_cache_inserts_total{outcome="stored"}': 1,
      'strata_cache_commit_transactions_total{trigger="waited"}': 1,
      'strata_origin_requests_total{origin="origin",outcome="2xx"}': 1,
      'strata_bytes_served_total{source="cache"}': 9,
      'strata_requests_total{site="default",status="2xx"}': 1,
      // The stale hit brought version 1 to the memory tier; version 2 comes there at its first hit.
      strata_memory_tier_bodies: 1,
      strata_memory_tier_bytes: 9,
    });
    assert.equal((await edge.get(swrLong)).text, 'version 2');
    assert.equal(origin.count(swrLong), 2);
  });

  it('counts a background revalidation answered 304 as an update', async () => {
    await edge.get('/swr-304');
    clock.advance(15);
    const counters = await metricsDelta(edge.node.metrics.registry);
    assert.equal((await edge.get('/swr-304')).text, 'validated in the background');
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_lookups_total{result="stale-while-revalidate"}'], 1);
    assert.equal(delta['strata_cache_inserts_total{outcome="updated"}'], 1);
    assert.equal(origin.count('/swr-304'), 2);
    assert.match(String((await edge.get('/swr-304')).headers['cache-status']), /^strata; hit/);
  });
});
