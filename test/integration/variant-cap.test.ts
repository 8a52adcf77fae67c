/** One URL cannot fill the cache with Vary variants: cache.maxVariants keeps the most recently used. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode } from './purge-support.ts';

const PATH = `/variants/${'v'.repeat(120)}`;
const HOST = 'variants.test';

const varied: Route = (req, res) => {
  res.writeHead(200, { 'cache-control': 'max-age=600', vary: 'X-Variant' });
  res.end(`variant ${req.headers['x-variant']}`);
};

describe('variants per URL', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({ [PATH]: varied });
    edge = await startAdminNode({ origin: origin.url, cache: { maxVariants: 5 } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const get = (variant: number) =>
    request(`${edge.url}${PATH}`, { headers: { host: HOST, 'x-variant': String(variant) } });

  it('keeps at most cache.maxVariants of them, the most recently used', async () => {
    for (let i = 0; i < 40; i++) {
      const res = await get(i);
      assert.equal(res.text, `variant ${i}`);
      await edge.node.idle();
    }
    assert.equal(origin.count(PATH), 40);
    const inspected = await edge.call('GET', `/cache?url=${encodeURIComponent(`http://${HOST}${PATH}`)}`);
    const variants = (JSON.parse(inspected.text) as { variants: Array<{ secondaryKey: string }> }).variants;
    assert.equal(variants.length, 5);
    for (let i = 35; i < 40; i++) {
      const hit = await get(i);
      assert.equal(hit.text, `variant ${i}`);
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    }
    const evicted = await get(0);
    assert.equal(evicted.text, 'variant 0');
    assert.doesNotMatch(String(evicted.headers['cache-status']), /hit/);
    assert.equal(origin.count(PATH), 41);
  });
});
