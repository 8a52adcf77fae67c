import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/index.ts';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const PAGE =
  '/blog/2026/12/02/a-long-article-title-about-caching-rules-at-the-edge?ref=homepage-hero&lang=en';

describe('site cache rules across a reload', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const configWith = (rules: unknown[]) => {
    const result = validateConfig({
      listeners: [{ listen: '127.0.0.1:0' }],
      origins: [{ name: 'origin', url: origin.url }],
      sites: [{ name: 'blog', hosts: ['*'], origins: ['origin'], rules }],
      admin: { enabled: false },
      logging: { level: 'silent' },
      cache: edge.node.config.cache,
    });
    assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
    return result.config;
  };

  before(async () => {
    origin = await startOrigin({
      '/blog/2026/12/02/a-long-article-title-about-caching-rules-at-the-edge': respond(
        200,
        { 'content-type': 'text/html', 'x-backend': 'blog-7.internal' },
        '<html>article</html>',
      ),
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('takes new rules with the sites: a TTL and a hidden header appear, then a pass rule applies', async () => {
    // No freshness from the origin: stored, but never reused without asking the origin again.
    await edge.get(PAGE);
    const again = await edge.get(PAGE);
    assert.equal(again.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored');
    edge.node.reloadSites(
      configWith([
        {
          name: 'articles',
          match: { path: '/blog/' },
          ttl: '1h',
          headers: { response: { remove: ['x-backend'] } },
        },
      ]),
    );
    await edge.get(PAGE);
    const hit = await edge.get(PAGE);
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=3600; detail=articles');
    assert.equal(hit.headers['x-backend'], undefined);
    edge.node.reloadSites(configWith([{ name: 'drafts', match: { query: { ref: '*' } }, action: 'pass' }]));
    const passed = await edge.get(PAGE);
    assert.equal(passed.headers['cache-status'], 'strata; fwd=bypass; fwd-status=200; detail=drafts');
    assert.equal(passed.headers['x-backend'], 'blog-7.internal');
    assert.equal(origin.count(), 4);
  });

  it("names the process's own settings a reload cannot apply: node.heap and node.backgroundNice", () => {
    const running = edge.node.config;
    const same = edge.node.reloadSites({ ...configWith([]), node: running.node });
    assert.deepEqual(same, []);
    const changed = edge.node.reloadSites({
      ...configWith([]),
      node: { ...running.node, heap: 'small', backgroundNice: running.node.backgroundNice + 1 },
    });
    assert.deepEqual(changed, ['node.heap', 'node.backgroundNice']);
  });
});
