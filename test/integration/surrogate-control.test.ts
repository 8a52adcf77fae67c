import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const NO_COMMA = `/account/${'settings-'.repeat(12)}overview?session-view=full&lang=en`;

describe('Surrogate-Control', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/long': respond(
        200,
        { 'cache-control': 'no-store', 'surrogate-control': 'max-age=60;strata' },
        'long',
      ),
      '/short': respond(200, { 'cache-control': 'max-age=3600', 'surrogate-control': 'max-age=1' }, 'short'),
      '/no-store': respond(200, { 'cache-control': 'max-age=3600', 'surrogate-control': 'no-store' }, 'ns'),
      [NO_COMMA.split('?')[0]!]: respond(
        200,
        { 'cache-control': 'max-age=3600', 'surrogate-control': 'no-store max-age=60' },
        'account of one user',
      ),
      '/other': respond(
        200,
        { 'cache-control': 'max-age=5', 'surrogate-control': 'max-age=3600;elsewhere' },
        'other',
      ),
      '/revalidated': (req, res) => {
        const headers = { 'cache-control': 'max-age=0', 'surrogate-control': 'max-age=10', etag: '"v1"' };
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, headers);
          res.end();
          return;
        }
        res.writeHead(200, headers);
        res.end('body');
      },
      '/capability': (req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(String(req.headers['surrogate-capability']));
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('stores on a max-age targeted at us, over Cache-Control: no-store, and never delivers the field', async () => {
    const first = await edge.get('/long');
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(first.headers['surrogate-control'], undefined);
    clock.advance(30);
    const second = await edge.get('/long');
    assert.equal(second.text, 'long');
    assert.equal(second.headers['cache-status'], 'strata; hit; ttl=30');
    assert.equal(second.headers['surrogate-control'], undefined);
    assert.equal(second.headers['cache-control'], 'no-store');
    assert.equal(origin.count('/long'), 1);
  });

  it('prefers a short Surrogate-Control max-age over a long Cache-Control one', async () => {
    await edge.get('/short');
    clock.advance(2);
    const second = await edge.get('/short');
    assert.equal(second.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored');
    assert.equal(origin.count('/short'), 2);
  });

  it('does not store under Surrogate-Control: no-store, whatever Cache-Control says', async () => {
    await edge.get('/no-store');
    const second = await edge.get('/no-store');
    assert.equal(second.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=no-store');
    assert.equal(origin.count('/no-store'), 2);
  });

  it('keeps a no-store whose comma is missing (`no-store max-age=60`) instead of falling back to Cache-Control', async () => {
    const first = await edge.get(NO_COMMA);
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=no-store');
    const second = await edge.get(NO_COMMA);
    assert.equal(second.text, 'account of one user');
    assert.equal(second.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=no-store');
    assert.equal(origin.requests.filter((r) => r.path === NO_COMMA).length, 2);
  });

  it('ignores directives targeted at another surrogate and follows Cache-Control', async () => {
    await edge.get('/other');
    clock.advance(6);
    const second = await edge.get('/other');
    assert.equal(second.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored');
    assert.equal(origin.count('/other'), 2);
  });

  it('takes the refreshed freshness from the Surrogate-Control of a 304', async () => {
    await edge.get('/revalidated');
    clock.advance(11);
    const revalidated = await edge.get('/revalidated');
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, 'body');
    assert.equal(revalidated.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    clock.advance(5);
    const hit = await edge.get('/revalidated');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=5');
    assert.equal(hit.headers['surrogate-control'], undefined);
    assert.equal(origin.count('/revalidated'), 2);
  });

  it('announces itself to the origin in Surrogate-Capability, after any surrogate before it', async () => {
    const plain = await edge.get('/capability');
    assert.equal(plain.text, 'strata="Surrogate/1.0"');
    const chained = await edge.get('/capability', {
      headers: { 'surrogate-capability': 'child="Surrogate/1.0"' },
    });
    assert.equal(chained.text, 'child="Surrogate/1.0", strata="Surrogate/1.0"');
    assert.equal(origin.count('/capability'), 2);
  });
});
