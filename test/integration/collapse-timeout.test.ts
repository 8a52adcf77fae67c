import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

describe('the collapse lock timeout (cache.collapseTimeout)', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/slow': (_req, res, hit) => {
        setTimeout(
          () => {
            res.writeHead(200, { 'cache-control': 'max-age=60' });
            res.end(`answer-${hit}`);
          },
          hit === 1 ? 600 : 10,
        );
      },
    });
    edge = await startNode({ origin: origin.url, cache: { collapseTimeout: '100ms' } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('lets a follower fetch on its own once the leader takes longer than the timeout, without storing', async () => {
    const leader = request(`${edge.url}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const follower = await request(`${edge.url}/slow`);
    assert.equal(follower.text, 'answer-2');
    assert.match(String(follower.headers['cache-status']), /detail=collapse-timeout/);
    assert.equal((await leader).text, 'answer-1');
    await edge.node.idle();
    const hit = await edge.get('/slow');
    assert.equal(hit.text, 'answer-1', "the follower did not overwrite the leader's fill");
    assert.equal(origin.count('/slow'), 2);
  });
});
