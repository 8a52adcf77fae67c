/**
 * A refusal that answers one client (a 403 or 429 its origin or shield gives it alone, a 508
 * its CDN-Loop provoked) is relayed to that client unstored, and the key goes on collapsing:
 * the herd after it makes one origin request. An uncacheable 200 (private) still marks the key
 * hit-for-pass.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const PAGE = `/catalogue/${'winter-sale/'.repeat(7)}boots.html?size=42&colour=brown&utm_campaign=mail`;
const HERD = 12;

/** Refuses the client that says it is the abusive one; answers everyone else a cacheable page after 100 ms. */
function refusing(status: number) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['x-client'] === 'abusive') {
      res.writeHead(status, { 'content-type': 'text/plain', 'retry-after': '30' });
      res.end(`refused ${status}\n`);
      return;
    }
    await sleep(100);
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=60' });
    res.end('<p>boots</p>');
  };
}

describe('collapsing after a refusal that answers one client', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/refused-403': refusing(403),
      '/refused-429': refusing(429),
      '/refused-508': refusing(508),
      '/slow-refusal': async (req, res) => {
        if (req.headers['x-client'] === 'abusive') {
          await sleep(300);
          res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '30' });
          res.end('refused 429\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=60' });
        res.end('<p>boots</p>');
      },
      '/private': async (_req, res) => {
        await sleep(100);
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'private, max-age=60' });
        res.end('<p>your basket</p>');
      },
    });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const status of [403, 429, 508]) {
    it(`relays a ${status} to its client and still collapses the next herd into one origin request`, async () => {
      const path = `/refused-${status}${PAGE.slice(PAGE.indexOf('?'))}`;
      assert.ok(path.length > 40);
      const refused = await edge.get(path, { headers: { 'x-client': 'abusive' } });
      assert.equal(refused.status, status);
      assert.equal(refused.text, `refused ${status}\n`);
      assert.match(String(refused.headers['cache-status']), new RegExp(`fwd=miss; fwd-status=${status}`));
      const herd = await Promise.all(Array.from({ length: HERD }, () => request(`${edge.url}${path}`)));
      for (const response of herd) {
        assert.equal(response.status, 200);
        assert.equal(response.text, '<p>boots</p>');
      }
      const statuses = herd.map((r) => String(r.headers['cache-status']));
      assert.equal(statuses.filter((s) => s.endsWith('collapsed')).length, HERD - 1, statuses.join(' | '));
      assert.equal(origin.count(path), 2, 'the refusal, then one request for the herd');
    });
  }

  it('stores what the followers of a refused request fetch: a refused client in flight does not keep the key unstored', async () => {
    const abusive = request(`${edge.url}/slow-refusal`, { headers: { 'x-client': 'abusive' } });
    // The refused request leads: the herd comes once it is at the origin.
    await until(() => origin.count('/slow-refusal') === 1, 10_000);
    const herd = await Promise.all(Array.from({ length: 4 }, () => request(`${edge.url}/slow-refusal`)));
    assert.equal((await abusive).status, 429);
    for (const response of herd) {
      assert.equal(response.status, 200);
      assert.equal(response.text, '<p>boots</p>');
      // Each fetched on its own once the leader was refused (no hit-for-pass marker, no stream).
      assert.match(String(response.headers['cache-status']), /^strata; fwd=miss; fwd-status=200/);
    }
    assert.ok(
      herd.some((r) => String(r.headers['cache-status']).endsWith('; stored')),
      herd.map((r) => r.headers['cache-status']).join(' | '),
    );
    await edge.node.idle();
    const next = await request(`${edge.url}/slow-refusal`);
    assert.equal(next.text, '<p>boots</p>');
    assert.match(String(next.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/slow-refusal'), 1 + 4);
  });

  it('still marks a key whose answer is private hit-for-pass: the next herd is not held behind a leader', async () => {
    await edge.get('/private');
    const herd = await Promise.all(Array.from({ length: HERD }, () => request(`${edge.url}/private`)));
    for (const response of herd) assert.equal(response.text, '<p>your basket</p>');
    assert.equal(herd.filter((r) => String(r.headers['cache-status']).endsWith('collapsed')).length, 0);
    assert.equal(origin.count('/private'), 1 + HERD);
  });
});
