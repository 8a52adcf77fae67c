/**
 * `node.accept`: with `workers`, every worker accepts from the shared listener itself (node:cluster's
 * SCHED_NONE); with the default, the primary alone holds the listener and hands connections out.
 * A worker killed under a stream of new connections: the node keeps answering on fresh
 * connections, each with a deadline, and the primary restarts the worker. A SIGTERM while that
 * restarted worker is still starting stops the node at once (it used to wait 30 s for it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { holdsListener, type Served, serve, until, workerPids } from './workers-support.ts';

const PATH = `/accept/${'connection-'.repeat(10)}item.css?v=${'7'.repeat(24)}`;

// Which process holds the listener is read from /proc (Linux).
describe('node.accept with 2 workers', { skip: process.platform !== 'linux' }, () => {
  let origin: TestOrigin;
  const dir = mkdtempSync(join(tmpdir(), 'strata-accept-'));
  const started: Served[] = [];

  before(async () => {
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'max-age=600' }, 'styles') });
  });
  after(async () => {
    for (const served of started) {
      served.child.kill('SIGTERM');
      await served.exited;
    }
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(accept: string | undefined): Promise<Served> {
    const name = accept ?? 'default';
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        `origins: [{ name: origin, url: "${origin.url}" }]`,
        'sites: [{ name: default, hosts: ["*"], origins: [origin] }]',
        ...(accept ? [`node: { accept: ${accept} }`] : []),
        '',
      ].join('\n'),
    );
    const served = await serve(origin.url, join(dir, name), file);
    started.push(served);
    return served;
  }

  const portOf = (served: Served) => Number(new URL(served.url).port);

  it('leaves the listener to the primary by default', async () => {
    const served = await start(undefined);
    const workers = workerPids(served.child.pid!);
    assert.equal(workers.length, 2);
    assert.ok(holdsListener(served.child.pid!, portOf(served)), 'the primary listens');
    for (const pid of workers) assert.ok(!holdsListener(pid, portOf(served)), `worker ${pid} does not`);
  });

  it('gives every worker the listener with accept: workers, and answers through a worker crash', async () => {
    const served = await start('workers');
    const port = portOf(served);
    const workers = workerPids(served.child.pid!);
    assert.equal(workers.length, 2);
    for (const pid of workers) assert.ok(holdsListener(pid, port), `worker ${pid} holds the listener`);
    // Stored before the kill (a hit from either worker), so every answer after it is a hit.
    const hit = async () => {
      const answer = await request(`${served.url}${PATH}`, {
        headers: { connection: 'close' },
        timeoutMs: 5000,
      });
      assert.equal(answer.text, 'styles');
      return String(answer.headers['cache-status']).includes('hit');
    };
    assert.ok(await until(hit, 5000), 'stored');
    process.kill(workers[0]!, 'SIGKILL');
    // Fresh connections while one worker is gone and restarted: every one answered in time.
    for (let i = 0; i < 40; i++) {
      const answer = await request(`${served.url}${PATH}`, {
        headers: { connection: 'close' },
        timeoutMs: 5000,
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.text, 'styles');
    }
    // Replaced: a new worker holds the listener (it has started, not only been forked).
    assert.ok(
      await until(() => {
        const now = workerPids(served.child.pid!);
        return now.length === 2 && !now.includes(workers[0]!) && now.every((pid) => holdsListener(pid, port));
      }, 10_000),
      'the killed worker was replaced',
    );
    assert.equal(origin.count(PATH), 1);
  });

  it('stops within seconds on SIGTERM while a restarted worker is still starting', async () => {
    const served = await start('primary');
    const workers = workerPids(served.child.pid!);
    process.kill(workers[0]!, 'SIGKILL');
    // The primary forks the replacement 100 ms after the crash; it takes a while to start.
    assert.ok(
      await until(() => workerPids(served.child.pid!).some((pid) => !workers.includes(pid)), 5000),
      'a replacement was forked',
    );
    const running = workerPids(served.child.pid!);
    const stopping = Date.now();
    served.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      served.exited,
      new Promise<string>((resolve) => {
        timer = setTimeout(resolve, 10_000, 'still running after 10 s');
      }),
    ]);
    clearTimeout(timer);
    assert.equal(code, 0, `exit code (${Date.now() - stopping} ms after SIGTERM)`);
    // Every worker is gone too (one left behind would be a child of init, not of the primary).
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(await until(() => !running.some(alive), 2000), `workers ${running} exited`);
  });
});
