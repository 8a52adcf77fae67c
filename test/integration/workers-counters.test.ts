/**
 * The admin API's totals with `--workers 2` stay totals since the node started when a worker is
 * replaced: a worker killed (or replaced on SIGHUP) takes none of the counts it reported away.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { hupAndReplaced, many, type Served, serve, TOKEN, until, workerPids } from './workers-support.ts';

const auth = { authorization: `Bearer ${TOKEN}` };

async function totals(admin: string): Promise<{ requests: number; metric: number }> {
  const stats = JSON.parse((await request(`${admin}/stats`, { headers: auth })).text) as {
    traffic: { requests: number };
  };
  const metrics = await request(`${admin}/metrics`, { headers: auth });
  const metric = [...metrics.text.matchAll(/^strata_requests_total\{[^}]*\} (\d+)/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
  return { requests: stats.traffic.requests, metric };
}

describe('request totals with 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-workers-counters-'));
    origin = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600' });
        res.end('page');
      },
    });
    node = await serve(origin.url, dir);
  });
  after(async () => {
    if (node?.child.exitCode === null) node.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the requests a killed worker served in /stats and /metrics', async () => {
    for (const response of await many(`${node.url}/page`, 40, { connection: 'close' }))
      assert.equal(response.text, 'page');
    assert.equal(origin.count('/page'), 1);
    assert.deepEqual(await totals(node.admin), { requests: 40, metric: 40 });
    const pids = workerPids(node.child.pid!);
    assert.equal(pids.length, 2);
    process.kill(pids[0]!, 'SIGKILL');
    const replaced = await until(() => {
      const now = workerPids(node.child.pid!);
      return now.length === 2 && !now.includes(pids[0]!);
    }, 10_000);
    assert.ok(replaced, 'the killed worker was replaced');
    const after = await totals(node.admin);
    assert.equal(after.requests, 40, 'the requests the killed worker served are still counted');
    assert.equal(after.metric, 40);
    assert.equal(origin.count('/page'), 1);
  });

  it('keeps the requests of workers replaced on SIGHUP in /stats and /metrics', async () => {
    const start = (await totals(node.admin)).requests;
    for (const response of await many(`${node.url}/page`, 10, { connection: 'close' }))
      assert.equal(response.text, 'page');
    assert.equal((await totals(node.admin)).requests, start + 10);
    assert.ok(await hupAndReplaced(node.child), 'both workers were replaced');
    const after = await totals(node.admin);
    assert.ok(after.requests >= start + 10, `totals only grow: ${after.requests} after ${start + 10}`);
    assert.equal(after.metric, after.requests);
    assert.equal(origin.count('/page'), 1);
  });
});
