/**
 * /metrics as a Prometheus server scrapes it: process and runtime metrics, request counts by
 * site and status class, request durations by cache outcome, stored entries and build info —
 * for one process and summed over 2 workers. `promtool check metrics` when it is installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type AdminNode, startAdminNode } from './purge-support.ts';
import { type Served, serve, TOKEN } from './workers-support.ts';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
const LONG = `/articles/${'how-caching-edges-keep-origins-quiet-'.repeat(3)}part-2.html?lang=en&print=false`;

/** The value of one sample line, `name{labels} value`, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function promtool(text: string): { ok: boolean; output: string } | undefined {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (run.error !== undefined) return undefined; // not installed
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

describe('metrics of one process', () => {
  let origin: TestOrigin;
  let edge: AdminNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      [LONG]: respond(200, { 'cache-control': 'max-age=60' }, 'an article'),
      '/gone': respond(404, { 'cache-control': 'no-store' }, 'not here'),
    });
    edge = await startAdminNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('counts requests by site and status class, durations by cache outcome, and stored entries', async () => {
    await edge.get(LONG);
    await edge.get(LONG);
    await edge.get('/gone');
    assert.equal(origin.count(LONG), 1);
    const { text, status } = await edge.call('GET', '/metrics');
    assert.equal(status, 200);
    assert.equal(sample(text, 'strata_requests_total{site="default",status="2xx"}'), 2);
    assert.equal(sample(text, 'strata_requests_total{site="default",status="4xx"}'), 1);
    assert.equal(sample(text, 'strata_request_duration_seconds_count{cache="hit"}'), 1);
    assert.equal(sample(text, 'strata_request_duration_seconds_count{cache="miss"}'), 2);
    assert.equal(sample(text, 'strata_request_duration_seconds_bucket{le="+Inf",cache="hit"}'), 1);
    assert.equal(sample(text, 'strata_store_entries'), 1);
    assert.equal(sample(text, `strata_build_info{version="${VERSION}",node="${process.versions.node}"}`), 1);
  });

  it('exposes process and runtime metrics', async () => {
    const { text } = await edge.call('GET', '/metrics');
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_external_memory_bytes',
    ])
      assert.ok((sample(text, name) ?? -1) >= 0, `${name} missing`);
  });

  it('shows no purge-bus metrics on a node without fleet.nats (docs/admin-api.md)', async () => {
    const { text } = await edge.call('GET', '/metrics');
    assert.deepEqual(
      text.split('\n').filter((line) => line.includes('strata_fleet_')),
      [],
      'a node without a fleet must not report a bus that is down',
    );
  });

  it('passes promtool check metrics (when promtool is installed)', async (t) => {
    const { text } = await edge.call('GET', '/metrics');
    const checked = promtool(text);
    if (checked === undefined) return t.skip('promtool is not installed');
    assert.ok(checked.ok, checked.output);
  });
});

describe('metrics of 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-metrics-workers-'));
    origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=600' }, 'page') });
    const config = join(dir, 'strata.json');
    writeFileSync(
      config,
      JSON.stringify({
        origins: [{ name: 'main', url: origin.url }],
        sites: [{ name: 'shop', hosts: ['*'], origins: ['main'] }],
        logging: { access: false },
      }),
    );
    node = await serve(origin.url, dir, config);
  });
  after(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sums requests over the workers, names the build once, and adds up process metrics', async () => {
    assert.equal((await request(`${node.url}/page`)).status, 200);
    // The fill is committed before the next requests, whichever worker they reach (a request
    // sent the moment a response ended may otherwise arrive before the commit: a second miss).
    const auth = { authorization: `Bearer ${TOKEN}` };
    const stored = async () =>
      sample((await request(`${node.admin}/metrics`, { headers: auth })).text, 'strata_store_entries') === 1;
    assert.ok(await until(stored, 5000), 'the first response was stored');
    for (let i = 0; i < 5; i++) assert.equal((await request(`${node.url}/page`)).status, 200);
    const { text } = await request(`${node.admin}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(sample(text, 'strata_requests_total{site="shop",status="2xx"}'), 6);
    assert.equal(sample(text, 'strata_request_duration_seconds_count{cache="hit"}'), 5);
    assert.equal(sample(text, `strata_build_info{version="${VERSION}",node="${process.versions.node}"}`), 1);
    assert.equal(sample(text, 'strata_store_entries'), 1);
    // Three processes (primary and 2 workers), each some megabytes resident: summed.
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 3 * 20 * 1024 * 1024);
    const checked = promtool(text);
    if (checked !== undefined) assert.ok(checked.ok, checked.output);
    // /stats reads the same sums (strata top's source).
    const stats = await request(`${node.admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const traffic = JSON.parse(stats.text).traffic;
    assert.equal(traffic.requests, 6);
    assert.deepEqual(traffic.lookups, { miss: 1, hit: 5 });
    assert.deepEqual(traffic.bytes, { cache: 5 * 4, origin: 4 });
  });
});
