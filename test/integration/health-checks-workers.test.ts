/**
 * `strata serve --workers 2` with active health checks: the primary probes (once per node, not
 * once per worker) and every worker follows its verdicts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { hupAndReplaced, type Served, serve, TOKEN, until } from './workers-support.ts';

const INTERVAL = 200;

describe('health checks with 2 workers', () => {
  let near: TestOrigin;
  let far: TestOrigin;
  let node: Served;
  let dir: string;
  let nearHealthy = true;
  const nearProbes: number[] = [];
  let file: string;
  const config = (healthCheck: Record<string, unknown>) => ({
    origins: [
      { name: 'near', url: near.url },
      { name: 'far', url: far.url },
    ],
    sites: [{ name: 'checked', hosts: ['checked.test'], origins: ['near', 'far'], healthCheck }],
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-health-workers-'));
    near = await startOrigin({
      '/health': (_req, res) => {
        nearProbes.push(Date.now());
        res.writeHead(nearHealthy ? 200 : 503);
        res.end();
      },
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('near');
      },
    });
    far = await startOrigin({
      '/health': (_req, res) => {
        res.writeHead(200);
        res.end();
      },
      '/page': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'no-store' });
          res.end('far');
        }, 30);
      },
    });
    file = join(dir, 'strata.json');
    writeFileSync(
      file,
      JSON.stringify(config({ path: '/health', interval: INTERVAL, healthy: 1, unhealthy: 2 })),
    );
    node = await serve(near.url, dir, ['--config', file]);
  });
  after(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
    await Promise.all([near.close(), far.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends exactly one probe per origin per interval, not one per worker', async () => {
    assert.ok(await until(() => nearProbes.length >= 6, 5000), `probes: ${nearProbes.length}`);
    const spans = nearProbes.slice(1, 6).map((at, i) => at - nearProbes[i]!);
    // Jitter keeps each gap within ±10% of the interval; two probers would halve some gaps.
    for (const gap of spans) assert.ok(gap >= INTERVAL * 0.9 - 15, `gaps ${spans.join(', ')} ms`);
    assert.equal(far.requests.filter((r) => r.path === '/health').length >= 5, true);
  });

  it('takes an unhealthy origin out of every worker', async () => {
    nearHealthy = false;
    const seen = nearProbes.length;
    assert.ok(await until(() => nearProbes.length >= seen + 3, 3000), 'two failing probes and one more');
    const before = near.count('/page');
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        request(`${node.url}/page?after=${i}`, { headers: { host: 'checked.test' } }).then((r) => r.text),
      ),
    );
    assert.deepEqual(new Set(answers), new Set(['far']));
    assert.equal(near.count('/page'), before);
  });

  it('keeps it out over a SIGHUP that changes its check, until the new check decides', async () => {
    // The new check needs 20 failures (4 s) for a verdict: the workers that replace the old ones
    // start well before, and must take the verdict the origin had, not an `unknown` that lets it in.
    writeFileSync(
      file,
      JSON.stringify(config({ path: '/health', interval: INTERVAL, healthy: 1, unhealthy: 20 })),
    );
    assert.ok(await hupAndReplaced(node.child), 'both workers were replaced');
    const before = near.count('/page');
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        request(`${node.url}/page?reloaded=${i}`, {
          headers: { host: 'checked.test', connection: 'close' },
        }).then((r) => r.text),
      ),
    );
    assert.deepEqual(new Set(answers), new Set(['far']));
    assert.equal(near.count('/page'), before);
  });
});

describe('passive ejection with 2 workers', () => {
  let down: TestOrigin;
  let live: TestOrigin;
  let node: Served;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-eject-workers-'));
    down = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(503, { 'retry-after': '120' });
        res.end('down');
      },
    });
    live = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('live');
      },
    });
    const file = join(dir, 'strata.json');
    writeFileSync(
      file,
      JSON.stringify({
        origins: [
          { name: 'down', url: down.url },
          { name: 'live', url: live.url },
        ],
        sites: [{ name: 'ejecting', hosts: ['ejecting.test'], origins: ['down', 'live'] }],
      }),
    );
    node = await serve(live.url, dir, ['--config', file]);
  });
  after(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
    await Promise.all([down.close(), live.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells the other worker of an ejection: the ejected origin sees one request, not one per worker', async () => {
    const first = await request(`${node.url}/page?first`, { headers: { host: 'ejecting.test' } });
    assert.equal(first.text, 'live', 'the 503 was retried on the other origin');
    assert.equal(down.count(), 1);
    // /metrics shows the worst state any process holds (never a sum: 2 + 2 read as 4, draining).
    // The worker that ejected told the primary before it answered the scrape that shows 2, and
    // the primary passed the ejection on at once: the next scrape reaches the other worker after it.
    const scrape = async () =>
      (await request(`${node.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text;
    let shared = false;
    for (let i = 0; i < 50 && !shared; i++) {
      shared = /^strata_origin_state\{origin="down"\} 2$/m.test(await scrape());
      if (!shared) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(shared, 'the origin is reported ejected (2)');
    const metrics = await scrape();
    assert.match(metrics, /^strata_origin_state\{origin="down"\} 2$/m, 'ejected in both is still 2');
    assert.match(metrics, /^strata_origin_state\{origin="live"\} 0$/m);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(`${node.url}/page?after=${i}`, { headers: { host: 'ejecting.test' } }).then((r) => r.text),
      ),
    );
    assert.deepEqual(new Set(answers), new Set(['live']));
    assert.equal(down.count(), 1);
  });

  it('keeps the ejection over a SIGHUP: the workers that replace the old ones are told of it', async () => {
    assert.ok(await hupAndReplaced(node.child), 'both workers were replaced');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(`${node.url}/page?reloaded=${i}`, {
          headers: { host: 'ejecting.test', connection: 'close' },
        }).then((r) => r.text),
      ),
    );
    assert.deepEqual(new Set(answers), new Set(['live']));
    assert.equal(down.count(), 1, 'Retry-After: 120 still holds: the origin sees no request');
  });
});
