import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** A path of real length (over 100 characters) and a short one. */
const LONG = `/catalogue/2026/winter/${'lightweight-hiking-jacket-'.repeat(4)}details.json`;
const SHORT = '/small.json';

describe('the memory tier holds hit bodies, not stored misses', () => {
  let origin: TestOrigin;
  let node: TestNode;
  const body = Buffer.from(JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => `item-${i}`) }));

  before(async () => {
    origin = await startOrigin();
    for (const path of [LONG, SHORT]) {
      origin.route(
        path,
        respond(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' }, body),
      );
    }
    node = await startNode({ origin: origin.url });
  });

  after(async () => {
    await node.close();
    await origin.close();
  });

  it('keeps nothing in memory for a stored miss; its first hit brings the body there', async () => {
    const tier = node.node.store.memory;
    for (const path of [LONG, SHORT]) {
      const miss = await node.get(path);
      assert.equal(miss.status, 200);
      assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
      assert.ok(miss.body.equals(body));
    }
    assert.equal(tier.bytes, 0, 'no body kept for the stored misses');
    const hit = await node.get(LONG);
    assert.match(String(hit.headers['cache-status']), /hit/);
    assert.ok(hit.body.equals(body));
    assert.equal(tier.bytes, body.length, 'the hit body is kept');
    const again = await node.get(LONG);
    assert.match(String(again.headers['cache-status']), /hit/);
    assert.ok(again.body.equals(body));
    assert.equal(origin.count(LONG), 1);
    assert.equal(origin.count(SHORT), 1);
  });
});

describe('a hot object among many bodies in the memory tier', () => {
  let origin: TestOrigin;
  let node: TestNode;
  /** Each object's own bytes (about 1 KiB): a body served for the wrong id shows. */
  const bodyOf = (url: string) => Buffer.from(`${url}\n${'x'.repeat(1000)}\n`);

  before(async () => {
    origin = await startOrigin();
    origin.route(LONG, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
      res.end(bodyOf(req.url ?? ''));
    });
    // Room for about a hundred of these bodies: the tier evicts all along.
    node = await startNode({ origin: origin.url, cache: { memorySize: 100 * 1024 } });
  });

  after(async () => {
    await node.close();
    await origin.close();
  });

  it('is answered from the tier, with its own bytes, while 300 other objects come and go', async () => {
    const tier = node.node.store.memory;
    const hot = `${LONG}?v=hot`;
    assert.match(String((await node.get(hot)).headers['cache-status']), /stored/);
    for (let i = 0; i < 300; i++) {
      const cold = `${LONG}?v=${i}`;
      const miss = await node.get(cold);
      assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/, cold);
      const hit = await node.get(cold);
      assert.match(String(hit.headers['cache-status']), /strata; hit/, cold);
      assert.ok(hit.body.equals(bodyOf(cold)), cold);
      const again = await node.get(hot);
      assert.match(String(again.headers['cache-status']), /strata; hit/, `hot after ${cold}`);
      assert.ok(again.body.equals(bodyOf(hot)), `hot body after ${cold}`);
      assert.ok(tier.bytes <= 100 * 1024, `tier within its bytes after ${cold}`);
    }
    assert.ok(tier.bytes > 90 * 1024, 'the tier is full, not emptied');
    assert.equal(origin.count(hot), 1);
    assert.equal(origin.count(`${LONG}?v=0`), 1);
    assert.equal(origin.requests.length, 301);
  });
});
