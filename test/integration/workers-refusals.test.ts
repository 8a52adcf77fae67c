/**
 * `strata serve --workers 2`: requests that waited, in either worker, for a request whose
 * client the origin refused (a 429 about that client, not the key) fetch on their own and store
 * what they fetch. Passed unstored, a refused client keeping a request in flight kept the key
 * from being stored and sent every other client's request for it to the origin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type Served, serve, until } from './workers-support.ts';

describe('waiting for a refused request, with 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-refusals-'));
    origin = await startOrigin({
      '/boots': async (req, res) => {
        if (req.headers['x-client'] === 'abusive') {
          await sleep(400);
          res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '30' });
          res.end('refused 429\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=60' });
        res.end('<p>boots</p>');
      },
    });
    node = await serve(origin.url, dir);
  });
  after(async () => {
    if (node?.child.exitCode === null) {
      node.child.kill('SIGTERM');
      await node.exited;
    }
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores what the requests that waited fetch, in both workers', async () => {
    const abusive = request(`${node.url}/boots`, { headers: { 'x-client': 'abusive' } });
    // The refused request leads: the herd comes once it is at the origin (not after a fixed
    // time, which a busy machine's worker could take longer than to receive it).
    await until(() => origin.count('/boots') === 1, 10_000);
    // New connections go to the workers in turn: the herd waits in both.
    const herd = await Promise.all(Array.from({ length: 4 }, () => request(`${node.url}/boots`)));
    const refused = await abusive;
    assert.equal(refused.status, 429, `${refused.status} ${refused.headers['cache-status']} ${refused.text}`);
    const statuses = herd.map((r) => String(r.headers['cache-status']));
    for (const response of herd) assert.equal(response.text, '<p>boots</p>');
    for (const status of statuses)
      assert.equal(status, 'strata; fwd=miss; fwd-status=200; stored', statuses.join(' | '));
    assert.equal(origin.count('/boots'), 1 + herd.length);
  });
});
