/**
 * Stored responses' commits gathered into shared LMDB transactions (cache.commitDelay,
 * src/cache/gathered-commits.ts): misses are answered without waiting for them; a request that
 * needs a commit starts it at once instead of waiting for the delay; a drain commits what waits,
 * so a restart finds it stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const BASE = `/assets/catalogue/${'winter-collection-'.repeat(5)}gallery-large.json`;
const pathOf = (i: number) => `${BASE}?variant=${i}&locale=en-GB&utm_source=newsletter`;
const bodyOf = (i: number) => Buffer.from(`${JSON.stringify({ item: i, text: 'x'.repeat(900) })}\n`);

describe('commits gathered into shared transactions', () => {
  let origin: TestOrigin;
  let edge: TestNode | undefined;

  before(async () => {
    origin = await startOrigin({
      '/slow-large': (_req, res) => {
        // 1 MiB over about 1.6 s: a fill a Range request waits for the commit of.
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': 16 * 65536,
          'cache-control': 'public, max-age=600',
        });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(Buffer.alloc(65536, sent % 251));
          if (++sent === 16) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
      },
      [BASE]: (req, res) => {
        const i = Number(new URL(req.url!, 'http://o').searchParams.get('variant'));
        const body = bodyOf(i);
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': body.length,
          'cache-control': 'public, max-age=600',
          etag: `"item-${i}"`,
          'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT',
        });
        res.end(body);
      },
    });
  });
  after(async () => {
    await edge?.close();
    await origin.close();
  });

  it('answers misses before their commits, which share one transaction once a request waits for one', async () => {
    assert.ok(pathOf(1).length > 100);
    edge = await startNode({ origin: origin.url, cache: { commitDelay: '1s' } });
    const store = edge.node.edge.store;
    const counters = await metricsDelta(edge.node.metrics.registry);
    const misses = await Promise.all([1, 2, 3, 4, 5].map((i) => request(`${edge!.url}${pathOf(i)}`)));
    for (const [n, miss] of misses.entries()) {
      assert.equal(miss.status, 200);
      assert.deepEqual(miss.body, bodyOf(n + 1));
      assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    }
    // Answered, not yet committed: the five wait for the delay (1 s) or for someone to need one.
    await until(() => store.commitsWaiting === 5, 5000);

    // A request for one of them follows its fill until the commit, and starts it now.
    const again = await request(`${edge.url}${pathOf(3)}`);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, bodyOf(3));
    assert.match(String(again.headers['cache-status']), /^strata; hit/);
    assert.equal(store.commitsWaiting, 0);
    // The others were committed in the same transaction: hits, the origin asked once for each.
    for (const i of [1, 5])
      assert.match(
        String((await request(`${edge.url}${pathOf(i)}`)).headers['cache-status']),
        /^strata; hit/,
      );
    for (const i of [1, 2, 3, 4, 5]) assert.equal(origin.count(pathOf(i)), 1);
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_commit_transactions_total{trigger="waited"}'], 1);
    assert.equal(
      delta['strata_cache_commit_transactions_total{trigger="delay"}'],
      undefined,
      'nothing waited for the delay',
    );
    assert.equal(delta['strata_cache_inserts_total{outcome="stored"}'], 5);
    await edge.close();
    edge = undefined;
  });

  it('commits what waits when the node stops: a restart on the directory finds it stored', async () => {
    // One Host for both nodes: the key is not their listeners' ports.
    const host = { headers: { host: 'shop.example' } };
    const first = await startNode({ origin: origin.url, cache: { commitDelay: '1s' } });
    const miss = await request(`${first.url}${pathOf(7)}`, host);
    assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    await until(() => first.node.edge.store.commitsWaiting === 1, 5000);
    await first.close({ keepDir: true });
    edge = await startNode({ origin: origin.url, dir: first.dir });
    const hit = await request(`${edge.url}${pathOf(7)}`, host);
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.deepEqual(hit.body, bodyOf(7));
    assert.equal(origin.count(pathOf(7)), 1);
    await edge.close();
    edge = undefined;
  });

  it('a follower whose client left holds the gathering open no longer', async () => {
    edge = await startNode({ origin: origin.url, cache: { commitDelay: '1s' } });
    const leader = request(`${edge.url}/slow-large`);
    try {
      await holdsNoLonger(edge, leader);
    } finally {
      await leader.catch(() => undefined);
    }
    await edge.close();
    edge = undefined;
  });

  async function holdsNoLonger(edge: TestNode, leader: ReturnType<typeof request>): Promise<void> {
    const store = edge.node.edge.store;
    await sleep(150);
    // A Range follower waits for the fill's commit (holding the gathering open), then leaves.
    await assert.rejects(
      request(`${edge.url}/slow-large`, { headers: { range: 'bytes=0-99' }, timeoutMs: 200 }),
    );
    await sleep(50);
    // The fill still runs: a miss made now waits for the delay like any other.
    const miss = await request(`${edge.url}${pathOf(11)}`);
    assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    await until(() => store.commitsWaiting === 1, 2000);
    assert.equal(store.commitsWaiting, 1, 'the commit waits: nothing holds the gathering open');
    assert.equal((await leader).body.length, 16 * 65536);
  }

  it('commits each at once with cache.commitDelay 0', async () => {
    edge = await startNode({ origin: origin.url, cache: { commitDelay: 0 } });
    const counters = await metricsDelta(edge.node.metrics.registry);
    await edge.get(pathOf(9));
    assert.equal(edge.node.edge.store.commitsWaiting, 0);
    assert.match(String((await edge.get(pathOf(9))).headers['cache-status']), /^strata; hit/);
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_commit_transactions_total{trigger="at-once"}'], 1);
    assert.equal(origin.count(pathOf(9)), 1);
  });
});
