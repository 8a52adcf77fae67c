import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, eventually, startAdminNode } from './purge-support.ts';

describe('a purge racing a fill', () => {
  let origin: TestOrigin;
  let edge: AdminNode;
  let release: () => void = () => {};
  let hold = false;

  before(async () => {
    origin = await startOrigin({
      '/slow': (_req, res) => {
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          'content-length': '10',
          'surrogate-key': 'slow',
        });
        res.write('old-');
        if (!hold) {
          res.end('body!!');
          return;
        }
        hold = false;
        release = () => res.end('body!!');
      },
    });
    edge = await startAdminNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const [name, body] of [
    ['URL', (base: string) => ({ urls: [`${base}/slow`] })],
    ['tag', () => ({ tags: ['slow'] })],
  ] as const) {
    it(`does not let a fill that began before a ${name} purge store what it fetched`, async () => {
      await edge.purge({ all: true });
      const before = origin.count('/slow');
      hold = true;
      const pending = request(`${edge.url}/slow`);
      assert.ok(await eventually(() => origin.count('/slow') === before + 1));
      // The origin answered headers and part of the body; the purge lands before the fill ends.
      await edge.purge(body(edge.base));
      release();
      const first = await pending;
      await edge.node.idle();
      assert.equal(first.text, 'old-body!!');
      assert.equal(first.complete, true);
      assert.equal(edge.node.store.lookup(`${edge.base}/slow`, {}).kind, 'miss');
      const next = await edge.get('/slow');
      assert.equal(next.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
      assert.equal(origin.count('/slow'), before + 2);
      assert.match(String((await edge.get('/slow')).headers['cache-status']), /^strata; hit/);
    });
  }
});
