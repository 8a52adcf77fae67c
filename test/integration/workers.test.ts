/**
 * `strata serve --workers 2` as a child process in front of a scripted origin: collapsing,
 * hit-for-pass and background revalidation hold across workers; the primary restarts a
 * killed worker, replaces workers on SIGHUP without refusing a request, and drains on SIGTERM.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { many, type Served, serve, TOKEN, until, workerPids } from './workers-support.ts';

describe('serving with 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;
  const body = Buffer.alloc(300 * 1024, 'strata-');
  const purgePath = `/shop/${'autumn-catalogue-'.repeat(6)}item.html?colour=red&size=l`;
  let holdPurge = false;
  let releasePurge: () => void = () => {};
  const fencePath = `/fence/${'spring-collection-'.repeat(6)}look.html?variant=blue&ref=homepage`;
  let holdFence = false;
  let releaseFence: () => void = () => {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-workers-'));
    origin = await startOrigin({
      '/cold': async (_req, res) => {
        await sleep(300);
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length });
        res.end(body);
      },
      '/hurry': async (_req, res) => {
        await sleep(300);
        const small = body.subarray(0, 2048);
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': small.length });
        res.end(small);
      },
      '/private': async (_req, res, hit) => {
        await sleep(200);
        res.writeHead(200, { 'cache-control': 'private, max-age=600' });
        res.end(`private ${hit}`);
      },
      '/flaky': async (_req, res, hit) => {
        await sleep(200);
        if (hit === 1) return void res.destroy();
        res.writeHead(200, { 'cache-control': 'max-age=600' });
        res.end('recovered');
      },
      '/swr': async (_req, res, hit) => {
        if (hit > 1) await sleep(300);
        // The first copy arrives already stale (Age past max-age: no TTL waited out); the revalidated one is fresh.
        res.writeHead(200, {
          'cache-control': `max-age=${hit > 1 ? 600 : 1}, stale-while-revalidate=60`,
          ...(hit > 1 ? {} : { age: '2' }),
        });
        res.end(`swr ${hit}`);
      },
      [purgePath.split('?')[0]!]: (_req, res) => {
        const held = holdPurge;
        holdPurge = false;
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': '10' });
        res.write(held ? 'old-' : 'new-');
        if (held) releasePurge = () => res.end('body!!');
        else res.end('body!!');
      },
      [fencePath.split('?')[0]!]: (_req, res) => {
        const held = holdFence;
        holdFence = false;
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          'content-length': '10',
          'surrogate-key': 'fence',
        });
        res.write(held ? 'old-' : 'new-');
        if (held) releaseFence = () => res.end('body!!');
        else res.end('body!!');
      },
      '/plain': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600' });
        res.end('plain');
      },
      '/fresh': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('fresh');
      },
    });
    node = await serve(origin.url, dir);
  });
  after(async () => {
    releasePurge();
    releaseFence();
    if (node?.child.exitCode === null) node.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('collapses 200 concurrent cold requests over both workers into one origin request', async () => {
    const responses = await many(`${node.url}/cold`, 200);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.complete);
      assert.ok(response.body.equals(body));
    }
    assert.equal(origin.count('/cold'), 1);
    const metrics = await request(`${node.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const lookups = [...metrics.text.matchAll(/^strata_cache_lookups_total\{[^}]*\} (\d+)/gm)];
    assert.equal(
      lookups.reduce((sum, m) => sum + Number(m[1]), 0),
      200,
      'admin /metrics sums both workers',
    );
  });

  it('commits at once a fill another worker waits for, not after cache.commitDelay', async () => {
    const transactions = async (): Promise<Record<string, number>> => {
      const metrics = await request(`${node.admin}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const counts: Record<string, number> = {};
      for (const m of metrics.text.matchAll(
        /^strata_cache_commit_transactions_total\{trigger="([^"]+)"\} (\d+)/gm,
      ))
        counts[m[1]!] = Number(m[2]);
      return counts;
    };
    const before = await transactions();
    const responses = await many(`${node.url}/hurry`, 40);
    for (const response of responses) assert.ok(response.body.equals(body.subarray(0, 2048)));
    assert.equal(origin.count('/hurry'), 1);
    await until(async () => ((await transactions()).waited ?? 0) > (before.waited ?? 0), 5000);
    // The other worker's requests waited on the node-wide lock: the primary hurried the leader,
    // whose commit did not wait for the 20 ms gathering.
    assert.equal((await transactions()).delay ?? 0, before.delay ?? 0);
  });

  it("counts the workers' memory tiers in /stats and /metrics (the primary serves no hit)", async () => {
    for (const response of await many(`${node.url}/cold`, 20)) {
      assert.match(String(response.headers['cache-status']), /strata; hit/);
      assert.ok(response.body.equals(body));
    }
    const auth = { authorization: `Bearer ${TOKEN}` };
    const stats = JSON.parse((await request(`${node.admin}/stats`, { headers: auth })).text) as {
      store: { memoryBytes: number; memoryBodies: number };
    };
    assert.ok(stats.store.memoryBodies >= 1, 'a hit body is held by the worker that served it');
    assert.ok(stats.store.memoryBodies <= 2, 'one copy per worker at most');
    assert.equal(stats.store.memoryBytes, stats.store.memoryBodies * body.length);
    const metrics = await request(`${node.admin}/metrics`, { headers: auth });
    assert.match(metrics.text, new RegExp(`^strata_memory_tier_bytes ${stats.store.memoryBytes}$`, 'm'));
    assert.equal(origin.count('/cold'), 1);
  });

  it('releases followers of an uncacheable response to fetch on their own, never sharing its body', async () => {
    const responses = await many(`${node.url}/private`, 20);
    const bodies = new Set(responses.map((r) => r.text));
    assert.equal(origin.count('/private'), 20);
    assert.equal(bodies.size, 20, 'every client got its own response');
    const statuses = responses.map((r) => String(r.headers['cache-status']));
    assert.equal(statuses.filter((s) => s.endsWith('detail=private')).length, 1, 'the leader says why');
    for (const status of statuses) assert.match(status, /^strata; fwd=miss; fwd-status=200/);
    // hit-for-pass: the next wave does not queue behind a leader, and still shares nothing
    const again = await many(`${node.url}/private`, 20);
    assert.equal(new Set(again.map((r) => r.text)).size, 20);
    assert.equal(origin.count('/private'), 40);
  });

  it('elects one new leader when the leading worker’s origin request fails', async () => {
    const responses = await many(`${node.url}/flaky`, 40);
    assert.equal(origin.count('/flaky'), 2);
    const ok = responses.filter((r) => r.status === 200 && r.text === 'recovered');
    assert.ok(ok.length >= 39, `${ok.length} of 40 recovered`);
  });

  it('runs one background revalidation per key across workers', async () => {
    assert.equal((await request(`${node.url}/swr`)).text, 'swr 1');
    // Committed (a moment after its answer ended) and its node-wide lock released: while a fill
    // of the key is being committed no worker revalidates it, and this one arrives stale.
    const stored = async () =>
      (
        await request(`${node.admin}/cache?url=${encodeURIComponent(`${node.url}/swr`)}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })
      ).status === 200 &&
      (
        JSON.parse(
          (await request(`${node.admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).text,
        ) as {
          collapse: { pending: number };
        }
      ).collapse.pending === 0;
    assert.ok(await until(stored, 5000), 'the first copy committed');
    const responses = await many(`${node.url}/swr`, 40);
    for (const response of responses) {
      assert.equal(response.text, 'swr 1');
      assert.match(String(response.headers['cache-status']), /^strata; hit/);
    }
    assert.ok(await until(() => origin.count('/swr') >= 2, 5000), 'revalidated in the background');
    await sleep(500);
    assert.equal(origin.count('/swr'), 2);
    assert.equal((await request(`${node.url}/swr`)).text, 'swr 2');
  });

  it('gives requests after a purge acknowledgement a new fetch in both workers, not the fill that began before it', async () => {
    holdPurge = true;
    const first = request(`${node.url}${purgePath}`);
    const stats = async () =>
      JSON.parse(
        (await request(`${node.admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).text,
      ) as { collapse: { pending: number } };
    assert.ok(await until(() => origin.count(purgePath) === 1, 5000));
    for (let i = 0; i < 50 && (await stats()).collapse.pending === 0; i++) await sleep(20);
    // Both workers have a request waiting on (or reading) the held fill before the purge.
    const before = many(`${node.url}${purgePath}`, 4);
    await sleep(100);
    const purge = await request(`${node.admin}/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [`${node.url}${purgePath}`] }),
    });
    assert.equal(purge.status, 200);
    const after = await many(`${node.url}${purgePath}`, 6);
    for (const response of after) assert.equal(response.text, 'new-body!!');
    assert.equal(origin.count(purgePath), 2);
    releasePurge();
    assert.equal((await first).text, 'old-body!!');
    for (const response of await before) assert.equal(response.text, 'old-body!!');
  });

  it('fences host purges and PURGE <url> like URL purges: both workers fetch anew after the answer', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const host = new URL(node.url).host;
    const purges = [
      (_path: string) =>
        request(`${node.admin}/purge`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ hosts: [host] }),
        }),
      (path: string) =>
        request(node.admin, { method: 'PURGE', rawPath: `${node.url}${path}`, headers: auth }),
    ];
    for (const [i, purge] of purges.entries()) {
      const path = `${fencePath}&round=${i}`;
      holdFence = true;
      const first = request(`${node.url}${path}`);
      assert.ok(await until(() => origin.count(path) === 1, 5000));
      const before = many(`${node.url}${path}`, 4);
      await sleep(100);
      const answer = await purge(path);
      assert.equal(answer.status, 200, answer.text);
      const after = await many(`${node.url}${path}`, 6);
      for (const response of after) assert.equal(response.text, 'new-body!!');
      assert.equal(origin.count(path), 2);
      releaseFence();
      assert.equal((await first).text, 'old-body!!');
      for (const response of await before) assert.equal(response.text, 'old-body!!');
    }
  });

  it('restarts a killed worker', async () => {
    const before = workerPids(node.child.pid!);
    assert.equal(before.length, 2);
    process.kill(before[0]!, 'SIGKILL');
    const restarted = await until(() => {
      const now = workerPids(node.child.pid!);
      return now.length === 2 && !now.includes(before[0]!);
    }, 10_000);
    assert.ok(restarted, 'a new worker took the killed one’s place');
    await until(() => false, 500);
    const responses = await many(`${node.url}/plain`, 10);
    for (const response of responses) assert.equal(response.text, 'plain');
  });

  it('replaces every worker on SIGHUP, again and again, without refusing or losing a request', async () => {
    const ROUNDS = 4;
    // Three clients on fresh connections (uncacheable: every request reaches the origin) through
    // four replacements, each request with a deadline. node:cluster hands a connection to a
    // worker in a message; a worker that exited with one unread left its client connected to
    // nobody (0.2-0.5 such clients per replacement before workers waited for the primary's echo
    // of 'leaving', src/cluster/leave.ts; bench/hardening/replacements.ts measures it).
    const failures: string[] = [];
    let answered = 0;
    let rounds = 0;
    const path = `/fresh?${'replacement-'.repeat(9)}`;
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const response = await request(`${node.url}${path}`, {
            headers: { connection: 'close' },
            timeoutMs: 5000,
          });
          if (response.text === 'fresh') answered++;
          else failures.push(`answered ${response.status}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const clients = Array.from({ length: 3 }, client);
    try {
      for (; rounds < ROUNDS; rounds++) {
        const before = workerPids(node.child.pid!);
        node.child.kill('SIGHUP');
        const replaced = () => {
          const now = workerPids(node.child.pid!);
          return now.length === 2 && now.every((pid) => !before.includes(pid));
        };
        // Polled slowly: ps blocks this process (and its clients) while it runs.
        if (!(await until(replaced, 20_000, 250))) break;
      }
    } finally {
      running = false;
      await Promise.all(clients);
    }
    assert.equal(rounds, ROUNDS, `both workers were replaced ${ROUNDS} times`);
    assert.deepEqual(failures, []);
    assert.ok(answered > 0);
  });

  it('drains every worker on SIGTERM and exits 0', async () => {
    origin.route('/last', async (_req, res) => {
      await sleep(400);
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('last');
    });
    const inFlight = request(`${node.url}/last`);
    await sleep(100);
    node.child.kill('SIGTERM');
    const response = await inFlight;
    assert.equal(response.text, 'last');
    assert.ok(response.complete);
    assert.equal(await node.exited, 0);
    assert.deepEqual(workerPids(node.child.pid!), []);
  });
});
