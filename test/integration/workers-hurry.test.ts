/**
 * `strata serve --workers 2` with cache.commitDelay 1s: a worker whose fill another worker waits
 * for (reading it from LMDB as it commits: its last chunk comes with the commit) is hurried by
 * the primary. Its fill's commit goes at once even when other commits of that worker were
 * already waiting for their shared transaction when the other worker started to wait.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type TestResponse } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type Served, serve } from './workers-support.ts';

/** The origin's think time for the key both workers want. */
const SLOW_MS = 300;

describe('a fill another worker waits for, with commits already waiting', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;
  const small = Buffer.alloc(2048, 'strata-');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-hurry-'));
    origin = await startOrigin({
      '/quick': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': small.length });
        res.end(small);
      },
      '/slow': async (_req, res) => {
        await sleep(SLOW_MS);
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': small.length });
        res.end(small);
      },
    });
    const file = join(dir, 'strata.json');
    writeFileSync(file, JSON.stringify({ cache: { commitDelay: '1s' } }));
    node = await serve(origin.url, dir, ['--config', file]);
  });
  after(async () => {
    if (node?.child.exitCode === null) {
      node.child.kill('SIGTERM');
      await node.exited;
    }
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits it at once: the other worker is not kept waiting cache.commitDelay', async () => {
    // The primary hands new connections to the workers in turn: each worker gets misses whose
    // commits wait for the delay (1 s).
    for (let i = 0; i < 4; i++) {
      const miss = await request(`${node.url}/quick?${i}`);
      assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    }
    // Within that second, a herd over both workers: one leads, the other worker waits for it.
    const start = performance.now();
    const timed = (): Promise<TestResponse & { ms: number }> =>
      request(`${node.url}/slow`, { timeoutMs: 10_000 }).then((r) => ({
        ...r,
        ms: performance.now() - start,
      }));
    const herd = await Promise.all(Array.from({ length: 6 }, timed));
    for (const response of herd) {
      assert.equal(response.status, 200);
      assert.ok(response.body.equals(small));
    }
    assert.equal(origin.count('/slow'), 1);
    const slowest = Math.max(...herd.map((r) => r.ms));
    assert.ok(slowest < SLOW_MS + 500, `the slowest was answered after ${Math.round(slowest)} ms`);
  });
});
