import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { startAdminNode } from './purge-support.ts';
import { type Served, serve, until } from './workers-support.ts';

/** A real full disk: a 3 MiB tmpfs mounted for the test (needs root, as in CI; skipped otherwise). */
function mountSmallFilesystem(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'strata-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir]);
  if (mounted.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return dir;
}

/** Whether this process can mount a tmpfs (root, as in CI): tried once, and let go. */
const CAN_MOUNT = (() => {
  const probe = mountSmallFilesystem();
  unmount(probe);
  return probe !== undefined;
})();
const SKIP = CAN_MOUNT ? false : 'needs root to mount a small tmpfs';

/** Unmounts the tmpfs and removes its mount point (lazily when a file on it is still open). */
function unmount(dir: string | undefined): void {
  if (dir === undefined) return;
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
}

describe('a full disk', () => {
  let origin: TestOrigin;
  // Mounted by the suite's hooks, so a run that filters its tests out leaves no mount behind.
  let dir: string | undefined;

  before(async () => {
    dir = CAN_MOUNT ? mountSmallFilesystem() : undefined;
    origin = await startOrigin({});
    for (let i = 0; i < 50; i++) {
      origin.route(`/o/${i}`, respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(100 * 1024, i)));
    }
  });
  after(async () => {
    await origin.close();
    unmount(dir);
  });

  it('does not crash the node: hits go on and misses pass through unstored', {
    skip: SKIP,
  }, async () => {
    const edge = await startNode({ origin: origin.url, dir: dir! });
    try {
      const statuses: string[] = [];
      for (let i = 0; i < 50; i++) {
        const res = await edge.get(`/o/${i}`);
        assert.equal(res.status, 200);
        assert.ok(res.body.equals(Buffer.alloc(100 * 1024, i)), `body ${i} intact`);
        statuses.push(String(res.headers['cache-status']));
      }
      assert.ok(
        statuses.some((s) => s.endsWith('; stored')),
        'some responses were stored before the disk filled',
      );
      assert.ok(
        statuses.some((s) => s.endsWith('detail=store-unavailable')),
        'later misses pass through unstored',
      );
      const hit = await edge.get('/o/0');
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.ok(hit.body.equals(Buffer.alloc(100 * 1024, 0)));
      assert.equal(origin.count('/o/0'), 1);
    } finally {
      await edge.close({ keepDir: true });
    }
  });
});

describe('space coming back on a full disk', () => {
  let origin: TestOrigin;
  // Mounted by the suite's hooks, so a run that filters its tests out leaves no mount behind.
  let dir: string | undefined;
  const path = (i: number) => `/space/${i}/${'s'.repeat(110)}`;

  before(async () => {
    dir = CAN_MOUNT ? mountSmallFilesystem() : undefined;
    origin = await startOrigin({});
    for (let i = 0; i < 60; i++) {
      origin.route(path(i), respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(100 * 1024, i)));
    }
  });
  after(async () => {
    await origin.close();
    unmount(dir);
  });

  it('says degraded in health while writes fail, and stores again within a second of space returning', {
    skip: SKIP,
  }, async () => {
    // Room taken by something else on the disk, given back later.
    const filler = join(dir!, 'filler');
    writeFileSync(filler, Buffer.alloc(1024 * 1024));
    const clock = createClock();
    const edge = await startAdminNode({ origin: origin.url, dir: dir!, now: clock.now });
    const health = async () =>
      JSON.parse((await edge.call('GET', '/healthz', undefined, null)).text) as {
        status: string;
        store?: string;
      };
    try {
      assert.equal((await health()).status, 'ok');
      let next = 0;
      let refused = false;
      for (; next < 40 && !refused; next++) {
        const res = await edge.get(path(next));
        assert.ok(res.body.equals(Buffer.alloc(100 * 1024, next)));
        refused = String(res.headers['cache-status']).endsWith('detail=store-unavailable');
        if (!refused && !String(res.headers['cache-status']).endsWith('; stored')) {
          // The fill that hit the full disk: its response went out, unstored.
          refused = edge.node.store.refusingWrites;
        }
      }
      assert.ok(refused, 'the disk filled up');
      const degraded = await health();
      assert.equal(degraded.status, 'degraded');
      assert.equal(degraded.store, 'refusing writes (disk full); misses pass through unstored');

      rmSync(filler);
      clock.advance(1.001);
      const res = await edge.get(path(next));
      assert.ok(res.body.equals(Buffer.alloc(100 * 1024, next)));
      assert.match(String(res.headers['cache-status']), /; stored$/, 'stored again one second later');
      assert.equal((await health()).status, 'ok');
      const hit = await edge.get(path(next));
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(path(next)), 1);
    } finally {
      await edge.close({ keepDir: true });
    }
  });
});

describe('a purge on a full disk', () => {
  let origin: TestOrigin;
  // Mounted by the suite's hooks, so a run that filters its tests out leaves no mount behind.
  let dir: string | undefined;
  const COUNT = 300;
  const path = (i: number) => `/catalogue/${i}/${'p'.repeat(120)}`;
  const body = (i: number) => Buffer.alloc(1024, i);
  const SPARE = 200;
  const spare = (i: number) => `/spare/${i}/${'s'.repeat(120)}`;

  before(async () => {
    dir = CAN_MOUNT ? mountSmallFilesystem() : undefined;
    origin = await startOrigin({});
    for (let i = 0; i < COUNT; i++) {
      origin.route(
        path(i),
        respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': `catalogue item-${i}` }, body(i)),
      );
    }
    for (let i = 0; i < SPARE; i++)
      origin.route(spare(i), respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(8 * 1024, i)));
  });
  after(async () => {
    await origin.close();
    unmount(dir);
  });

  it('is answered 503 saying the disk is full (not 500 "internal error"), and succeeds once space returns', {
    skip: SKIP,
  }, async () => {
    const clock = createClock();
    const edge = await startAdminNode({ origin: origin.url, dir: dir!, now: clock.now });
    const filler = join(dir!, 'filler');
    try {
      for (let i = 0; i < COUNT; i++) {
        const res = await edge.get(path(i));
        assert.match(String(res.headers['cache-status']), /; stored$/, `${i}`);
      }
      // Something else takes every byte left on the disk.
      writeFileSync(filler, '');
      for (let i = 0; i < 4096; i++) {
        try {
          appendFileSync(filler, Buffer.alloc(4096));
        } catch {
          break;
        }
      }
      // LMDB still has pages inside its file that earlier transactions freed: more misses take
      // them, until three in a row cannot be stored (asked again, each is no hit). Then the
      // purge finds no page to write to either.
      let failed = 0;
      for (let i = 0; i < SPARE && failed < 3; i++) {
        clock.advance(1.001); // past the pause after a failed write: this miss tries to store
        await edge.get(spare(i));
        const again = String((await edge.get(spare(i))).headers['cache-status']);
        failed = /^strata; hit/.test(again) ? 0 : failed + 1;
      }
      assert.equal(failed, 3, 'misses found no room');
      clock.advance(1.001); // the purge tries to write
      const refused = await edge.call('POST', '/purge', { tags: ['catalogue'] });
      assert.equal(refused.status, 503, refused.text);
      const answer = JSON.parse(refused.text) as { error: string; code: string };
      assert.equal(answer.code, 'EDGE_ERR_STORE_WRITE');
      assert.match(answer.error, /^purge not completed: the cache store refuses writes \(disk full\)/);
      // Not acknowledged. Its first batches may have been written (LMDB reuses the pages they
      // free without growing the file), so some entries may be gone: the node still answers.
      const served = await edge.get(path(COUNT - 1));
      assert.equal(served.status, 200);
      assert.ok(served.body.equals(body(COUNT - 1)));

      rmSync(filler);
      clock.advance(1.001);
      // Sent again, as the answer says: every entry is purged.
      const purged = await edge.purge({ tags: ['catalogue'] });
      assert.ok(purged.purged <= COUNT, `${purged.purged}`);
      for (const i of [0, COUNT >> 1, COUNT - 1]) {
        const before = origin.count(path(i));
        const miss = await edge.get(path(i));
        assert.match(String(miss.headers['cache-status']), /fwd=miss/, `${i}`);
        assert.ok(miss.body.equals(body(i)));
        assert.equal(origin.count(path(i)), before + 1);
      }
    } finally {
      await edge.close({ keepDir: true });
    }
  });
});

describe('a full disk with 2 workers', () => {
  let origin: TestOrigin;
  // Mounted by the suite's hooks, so a run that filters its tests out leaves no mount behind.
  let dir: string | undefined;
  let served: Served | undefined;
  const path = (i: number) => `/workers/${i}/${'w'.repeat(110)}`;
  // Small ones once space returns: stored without filling the disk again.
  const small = (i: number) => `/workers-small/${i}/${'w'.repeat(110)}`;
  // A connection per request: the primary hands them to the workers in turn, so both fill.
  const CLOSE = { headers: { connection: 'close' } };

  before(async () => {
    dir = CAN_MOUNT ? mountSmallFilesystem() : undefined;
    origin = await startOrigin({});
    for (let i = 0; i < 80; i++) {
      origin.route(path(i), respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(100 * 1024, i)));
      origin.route(small(i), respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(1024, i)));
    }
  });
  after(async () => {
    if (served && served.child.exitCode === null) {
      served.child.kill('SIGTERM');
      await served.exited;
    }
    await origin.close();
    unmount(dir);
  });

  it("says degraded in the primary's health while the workers' fills fail, and ok once they store again", {
    skip: SKIP,
  }, async () => {
    const filler = join(dir!, 'filler');
    writeFileSync(filler, Buffer.alloc(1024 * 1024));
    served = await serve(origin.url, dir!);
    const health = async () =>
      JSON.parse((await request(`${served!.admin}/healthz`)).text) as { status: string; store?: string };
    assert.equal((await health()).status, 'ok');
    let next = 0;
    let degraded: { status: string; store?: string } = { status: 'ok' };
    for (; next < 40 && degraded.status === 'ok'; next++) {
      const res = await request(`${served.url}${path(next)}`, CLOSE);
      assert.ok(res.body.equals(Buffer.alloc(100 * 1024, next)));
      // The worker tells the primary as its write fails: a few turns of the event loops.
      if (await until(async () => (await health()).status === 'degraded', 300)) degraded = await health();
    }
    assert.equal(degraded.status, 'degraded', 'the disk filled up');
    assert.equal(degraded.store, 'refusing writes (disk full); misses pass through unstored');

    rmSync(filler);
    // Each worker tries again a second after its failure: new misses until one is stored.
    let stored = false;
    next = 0;
    for (let tries = 0; tries < 30 && !stored; tries++, next++) {
      const res = await request(`${served.url}${small(next)}`, CLOSE);
      stored = String(res.headers['cache-status']).endsWith('; stored');
      if (!stored) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(stored, 'stored again once space returned');
    // Every worker that failed has stored since, or health waits for it: both workers get misses.
    assert.ok(
      await until(async () => {
        if ((await health()).status === 'ok') return true;
        await request(`${served!.url}${small(next++ % 80)}`, CLOSE);
        return false;
      }, 10_000),
      `ok again: ${JSON.stringify(await health())}`,
    );
  });
});
