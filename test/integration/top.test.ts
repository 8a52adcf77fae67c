/**
 * `strata top` against a live node: frames from /stats, rates as the change between two
 * refreshes, bounded by --count, and a clean exit on Ctrl-C.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;
const LONG = `/assets/${'responsive-product-gallery-image-'.repeat(3)}large.webp?width=1600&quality=80&v=20261202`;

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function top(admin: string, args: string[]): Running {
  const child = spawn(process.execPath, [CLI, 'top', '--admin', admin, '--token', TOKEN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (data: Buffer) => {
    out += data.toString();
  });
  child.stderr!.on('data', (data: Buffer) => {
    out += data.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

describe('strata top', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({
      [LONG.split('?')[0]!]: respond(
        200,
        { 'cache-control': 'max-age=600', 'surrogate-key': 'gallery' },
        Buffer.alloc(2048, 'w'),
      ),
    });
    edge = await startAdminNode({ origin: origin.url });
    await edge.get(LONG);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('shows totals first, then what changed between two refreshes', async () => {
    const run = top(edge.admin, ['--json', '--count', '2', '--interval', '2']);
    assert.ok(await until(() => run.output().includes('\n'), 10_000), run.output());
    for (let i = 0; i < 10; i++) assert.equal((await edge.get(LONG)).status, 200);
    await edge.purge({ tags: ['gallery'] });
    assert.equal(await run.exited, 0, run.output());
    const frames = run
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(frames.length, 2);
    const [first, second] = frames;
    assert.equal(first.requests, 1);
    assert.equal(first.hits, 0);
    assert.equal(first.seconds, undefined);
    assert.equal(second.requests, 10);
    assert.equal(second.hits, 10);
    assert.equal(second.hitRatio, 1);
    assert.equal(second.bytes, 10 * 2048);
    assert.equal(second.bytesFromCache, 10 * 2048);
    assert.equal(second.status['2xx'], 10);
    assert.equal(second.originRequests, 0);
    assert.equal(second.purges, 1);
    assert.equal(second.purgedEntries, 1);
    assert.ok(second.seconds >= 1.5 && second.seconds < 10, String(second.seconds));
    assert.deepEqual(
      second.origins.map((o: { site: string; name: string; state: string }) => [o.site, o.name, o.state]),
      [['default', 'origin', 'healthy']],
    );
    assert.equal(origin.count(LONG), 1);
  });

  it('prints a readable frame per refresh and stops after --count', async () => {
    const run = top(edge.admin, ['--count', '3', '--interval', '0.1']);
    assert.equal(await run.exited, 0, run.output());
    const frames = run
      .output()
      .split(/^strata top /m)
      .slice(1);
    assert.equal(frames.length, 3, run.output());
    assert.match(frames[0]!, /since start/);
    assert.match(frames[2]!, /over \d+\.\ds/);
    assert.match(frames[2]!, /^requests +0\.0\/s +hit ratio - +origin requests 0\.0\/s$/m);
    assert.match(frames[0]!, /^default +origin +healthy +unknown +[\d.]+ ms +0 +0$/m);
    assert.ok(!run.output().includes('\u001b['), 'no screen control codes when stdout is no terminal');
  });

  it('exits 0 on Ctrl-C', async () => {
    const run = top(edge.admin, ['--interval', '0.2']);
    assert.ok(await until(() => run.output().includes('hit ratio'), 10_000), run.output());
    run.child.kill('SIGINT');
    const code = await Promise.race([
      run.exited,
      new Promise((resolve) => setTimeout(resolve, 5000, 'hung')),
    ]);
    assert.equal(code, 0, run.output());
  });

  it('says what is wrong with a bad token, in one line', async () => {
    const run = spawn(
      process.execPath,
      [CLI, 'top', '--admin', edge.admin, '--token', 'wrong-token-0000000', '--count', '1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    run.stderr.on('data', (data: Buffer) => {
      err += data.toString();
    });
    const code = await new Promise((resolve) => run.once('exit', resolve));
    assert.equal(code, 1);
    assert.equal(
      err,
      `strata: the admin API refused the token (401): it is not the admin token of the node at ${edge.admin}\n`,
    );
  });
});

describe('strata top --help', () => {
  it('offers only what top takes, each default once', () => {
    const help = spawnSync(process.execPath, [CLI, 'top', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.doesNotMatch(help.stdout, /--cache-dir/, 'refused by top: not offered');
    assert.doesNotMatch(help.stdout, /\(default \d+\) \(default/);
    assert.match(help.stdout, /--count <n> +stop after this many refreshes \(default: 86400\)/);
  });
});

describe('strata top on a node whose origin never answered yet', () => {
  it('shows no latency for it instead of failing', async () => {
    const origin = await startOrigin({});
    const edge = await startAdminNode({ origin: origin.url });
    try {
      const stats = JSON.parse((await edge.call('GET', '/stats')).text) as {
        sites: { origins: { latencyMs: unknown }[] }[];
      };
      assert.equal(
        stats.sites[0]!.origins[0]!.latencyMs,
        null,
        'the shape /stats answers before any origin request',
      );
      const run = top(edge.admin, ['--count', '1']);
      assert.equal(await run.exited, 0, run.output());
      assert.match(run.output(), /^default +origin +\S+ +\S+ +- +0 +0$/m, run.output());
      assert.equal(origin.count(), 0);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
