/**
 * Error responses: a client error is stored only when cacheable by default; a server error
 * only for cache.maxErrorTtl, however long its max-age — one bad moment of the origin (or one
 * hostile request) must not answer everyone for a minute.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const long = (name: string) => `/search/${name}/${'results-for-a-long-query-'.repeat(5)}?q=shoes&sort=price`;

describe('caching error responses', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let capped: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin();
    for (const status of [400, 403, 429, 500, 503, 404, 410]) {
      origin.route(long(String(status)).split('?')[0]!, (_req, res, hit) => {
        res.writeHead(status, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end(`answer ${hit}`);
      });
    }
    edge = await startNode({ origin: origin.url, now: clock.now });
    capped = await startNode({ origin: origin.url, now: clock.now, cache: { maxErrorTtl: '0s' } });
  });
  after(async () => {
    await edge.close();
    await capped.close();
    await origin.close();
  });

  for (const status of [400, 403, 429]) {
    it(`does not store a ${status} even with max-age=60`, async () => {
      const path = long(String(status));
      const first = await edge.get(path);
      assert.equal(first.status, status);
      assert.match(String(first.headers['cache-status']), /detail=error-status/);
      const second = await edge.get(path);
      assert.equal(second.text, 'answer 2');
      assert.doesNotMatch(String(second.headers['cache-status']), /; hit/);
      assert.equal(origin.count(path), 2);
    });
  }

  for (const status of [500, 503]) {
    it(`stores a ${status} with max-age=60 for cache.maxErrorTtl (5 s) only, never stale`, async () => {
      const path = long(String(status));
      const before = origin.count(path);
      assert.equal((await edge.get(path)).status, status);
      clock.advance(4);
      const hit = await edge.get(path);
      assert.equal(hit.text, `answer ${before + 1}`);
      assert.match(String(hit.headers['cache-status']), /^strata; hit; ttl=1/);
      clock.advance(2);
      const expired = await edge.get(path, { headers: { 'cache-control': 'max-stale=3600' } });
      assert.equal(expired.text, `answer ${before + 2}`);
      assert.doesNotMatch(String(expired.headers['cache-status']), /; hit/);
      assert.equal(origin.count(path), before + 2);
    });
  }

  it('does not store a server error at all when cache.maxErrorTtl is 0', async () => {
    const path = `${long('500')}&capped=1`;
    const first = await capped.get(path);
    assert.equal(first.status, 500);
    assert.match(String(first.headers['cache-status']), /detail=error-status/);
    await capped.get(path);
    assert.equal(origin.count(path), 2);
  });

  for (const status of [404, 410]) {
    it(`stores a ${status} (cacheable by default) for its max-age`, async () => {
      const path = long(String(status));
      await edge.get(path);
      clock.advance(30);
      const hit = await edge.get(path);
      assert.equal(hit.status, status);
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(path), 1);
    });
  }
});
