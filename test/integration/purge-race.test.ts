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

  /** The long path's fill: the first answer is held mid-body until released; later ones are new. */
  const longPath = `/catalogue/${'spring-collection-'.repeat(6)}item.html?colour=blue&size=m`;
  let releaseLong: () => void = () => {};
  let holdLong = false;

  before(async () => {
    origin = await startOrigin({
      [longPath.split('?')[0]!]: (_req, res) => {
        const held = holdLong;
        holdLong = false;
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          'content-length': '10',
          'surrogate-key': 'catalogue',
        });
        res.write(held ? 'old-' : 'new-');
        if (held) releaseLong = () => res.end('body!!');
        else res.end('body!!');
      },
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
    releaseLong();
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

  for (const [name, body] of [
    ['URL', (base: string) => ({ urls: [`${base}${longPath}`] })],
    ['prefix', (base: string) => ({ prefixes: [`${base}/catalogue/`] })],
    ['tag', () => ({ tags: ['catalogue'] })],
    ['all', () => ({ all: true })],
  ] as const) {
    it(`gives a request after a ${name} purge's acknowledgement a new fetch, not the fill that began before it`, async () => {
      await edge.purge({ all: true });
      const before = origin.count();
      holdLong = true;
      const first = request(`${edge.url}${longPath}`);
      // The fill is running: headers and 4 of 10 bytes are in, the rest is held.
      assert.ok(
        await eventually(() => edge.node.edge.collapse.pending(`${edge.base}${longPath}`) !== undefined),
      );
      assert.ok(await eventually(() => origin.count() === before + 1));
      await edge.purge(body(edge.base));
      const after = request(`${edge.url}${longPath}`);
      const second = await after;
      assert.equal(second.text, 'new-body!!');
      assert.doesNotMatch(String(second.headers['cache-status']), /collapsed/);
      assert.equal(origin.count(), before + 2);
      releaseLong();
      assert.equal((await first).text, 'old-body!!');
      await edge.node.idle();
      const third = await edge.get(longPath);
      assert.equal(third.text, 'new-body!!');
      assert.match(String(third.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(), before + 2);
    });
  }
});
