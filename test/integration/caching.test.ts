import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

describe('caching a response', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/cacheable': respond(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, 'hello'),
      '/no-store': respond(200, { 'cache-control': 'no-store' }, 'secret'),
      '/private': respond(200, { 'cache-control': 'private, max-age=60' }, 'mine'),
      '/cookie': respond(200, { 'cache-control': 'max-age=60', 'set-cookie': 'session=abc' }, 'cookie'),
      '/tagged': respond(
        200,
        { 'cache-control': 'max-age=60', 'surrogate-key': 'a b', 'cache-tag': 'c' },
        'tags',
      ),
      '/cdn': respond(
        200,
        {
          'cache-control': 'no-store',
          'cdn-cache-control': 'max-age=120',
          'strata-cdn-cache-control': 'max-age=30',
        },
        'cdn',
      ),
      '/s-maxage': respond(200, { 'cache-control': 'max-age=1, s-maxage=100' }, 's'),
      '/expires': (_req, res) => {
        res.writeHead(200, {
          date: new Date(clock.now()).toUTCString(),
          expires: new Date(clock.now() + 30_000).toUTCString(),
        });
        res.end('expires');
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers the second request from the cache with Cache-Status hit and an Age', async () => {
    const first = await edge.get('/cacheable');
    assert.equal(first.status, 200);
    assert.equal(first.text, 'hello');
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    clock.advance(5);
    const second = await edge.get('/cacheable');
    assert.equal(second.status, 200);
    assert.equal(second.text, 'hello');
    assert.equal(second.headers['cache-status'], 'strata; hit; ttl=55');
    assert.equal(second.headers.age, '5');
    assert.equal(second.headers['content-type'], 'text/plain');
    assert.equal(second.headers['content-length'], '5');
    assert.equal(origin.count('/cacheable'), 1);
  });

  it('does not store no-store, private or Set-Cookie responses, and says why', async () => {
    for (const [path, reason] of [
      ['/no-store', 'no-store'],
      ['/private', 'private'],
      ['/cookie', 'set-cookie'],
    ] as const) {
      const first = await edge.get(path);
      const second = await edge.get(path);
      assert.equal(second.status, 200);
      assert.match(
        String(second.headers['cache-status']),
        new RegExp(`fwd=miss; fwd-status=200; detail=${reason}$`),
      );
      assert.equal(first.text, second.text);
      assert.equal(origin.count(path), 2, path);
    }
  });

  it('indexes tag headers and strips them before delivery', async () => {
    const first = await edge.get('/tagged');
    assert.equal(first.headers['surrogate-key'], undefined);
    assert.equal(first.headers['cache-tag'], undefined);
    const found = edge.node.store.lookup(`http://${new URL(edge.url).host}/tagged`, {});
    assert.equal(found.kind, 'found');
    if (found.kind === 'found') assert.deepEqual(found.record.tags.sort(), ['a', 'b', 'c']);
    assert.deepEqual([...edge.node.store.tagged('a')], [found.kind === 'found' ? found.id : '']);
  });

  it('takes freshness from Strata-CDN-Cache-Control over CDN-Cache-Control over Cache-Control, and strips only its own field', async () => {
    const first = await edge.get('/cdn');
    assert.equal(first.headers['strata-cdn-cache-control'], undefined);
    assert.equal(first.headers['cdn-cache-control'], 'max-age=120');
    assert.match(String(first.headers['cache-status']), /stored/);
    clock.advance(20);
    const hit = await edge.get('/cdn');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=10');
    clock.advance(20);
    const stale = await edge.get('/cdn');
    assert.match(String(stale.headers['cache-status']), /fwd=stale/);
    assert.equal(origin.count('/cdn'), 2);
  });

  it('prefers s-maxage over max-age', async () => {
    await edge.get('/s-maxage');
    clock.advance(50);
    const hit = await edge.get('/s-maxage');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/s-maxage'), 1);
  });

  it('uses Expires minus Date when no max-age is given', async () => {
    await edge.get('/expires');
    clock.advance(29);
    assert.match(String((await edge.get('/expires')).headers['cache-status']), /^strata; hit; ttl=1/);
    clock.advance(2);
    assert.match(String((await edge.get('/expires')).headers['cache-status']), /fwd=stale/);
    assert.equal(origin.count('/expires'), 2);
  });
});
