import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

describe('truncated origin responses', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/short-length': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' });
        res.write('only forty bytes of the promised hundred');
        setTimeout(() => res.socket?.destroy(), 20);
      },
      '/short-chunked': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.write('first part, ');
        setTimeout(() => res.socket?.destroy(), 20);
      },
    });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const path of ['/short-length', '/short-chunked']) {
    it(`never stores ${path} and lets the client see it cut short`, async () => {
      const first = await edge.get(path);
      assert.equal(first.complete, false, 'the client must not see a clean end');
      const second = await edge.get(path);
      assert.equal(second.complete, false);
      assert.equal(origin.count(path), 2, 'nothing was stored');
      assert.match(String(first.headers['cache-status']), /fwd=miss/);
    });
  }
});
