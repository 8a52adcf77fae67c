/**
 * One live node per fleet.node, on a real nats-server: a second node started under a name
 * another live node holds (a copied config file, a cloned machine) does not bind the shared
 * durable consumer, says so in its log, /stats and /healthz, and keeps serving; every purge
 * reaches the first node. Once the first is gone the second takes the name and applies what
 * it missed. A node restarted on its own cache directory takes its name back at once.
 * Skipped when nats-server is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { FLEET_TOKEN, freePort, serveProcess } from '../helpers/fleet.ts';
import { natsMissing, startNats, type TestNats } from '../helpers/nats.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, eventually, startAdminNode } from './purge-support.ts';

const skip = natsMissing();
/** fleet.presence.interval in these tests: a name not refreshed for 3 s is free. */
const INTERVAL_MS = 1000;
/** Longest wait for a name to change hands: the bound (3 intervals), one more, and slack. */
const TAKE_MS = 5 * INTERVAL_MS + 2000;
const path = (i: number) => `/catalogue/${'p'.repeat(110)}/item-${i}.json`;
const HOST = { host: 'example.test' };

/** The node's log says neither that another live node holds its name nor that it took it over. */
function assertNoConflict(lines: Array<Record<string, unknown>>): void {
  const conflict = lines.filter((line) => /held by another live node|taken over/.test(String(line.msg)));
  assert.deepEqual(conflict, [], JSON.stringify(lines));
}

describe('fleet: one live node per fleet.node', { skip }, () => {
  let nats: TestNats;
  let origin: TestOrigin;
  const nodes: AdminNode[] = [];
  const dirs: string[] = [];

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-presence-'));
    dirs.push(dir);
    return dir;
  };
  const start = async (name: string, dir = tempDir(), lines?: Array<Record<string, unknown>>) => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines?.push(JSON.parse(line));
        done();
      },
    });
    const node = await startAdminNode({
      origin: origin.url,
      dir,
      config: {
        fleet: {
          nats: { servers: [nats.url] },
          node: name,
          readiness: { catchUpTimeout: '20s' },
          presence: { interval: INTERVAL_MS },
        },
      },
      purge: { retry: { initial: '20ms', max: '200ms' } },
      ...(lines ? { logger: pino({ level: 'info' }, sink) } : {}),
    });
    nodes.push(node);
    return node;
  };
  const stop = async (node: AdminNode) => {
    nodes.splice(nodes.indexOf(node), 1);
    await node.close({ keepDir: true });
  };
  const stats = async (node: AdminNode) => JSON.parse((await node.call('GET', '/stats')).text).fleet;
  const health = async (node: AdminNode) =>
    JSON.parse((await node.call('GET', '/healthz', undefined, null)).text);
  const ready = (node: AdminNode) =>
    eventually(async () => (await node.call('GET', '/readyz')).status === 200, 15_000);
  const cacheStatus = async (node: AdminNode, target: string) =>
    String((await node.get(target, { headers: HOST })).headers['cache-status']);
  /** Writes an entry under a name in the presence bucket, as a node would. */
  const holdByHand = async (name: string, entry: Record<string, unknown>) => {
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create('STRATA_NODES', { history: 1 });
      return await kv.put(`STRATA_PURGES.${name}`, JSON.stringify(entry));
    } finally {
      await nc.close();
    }
  };

  before(async () => {
    nats = await startNats();
    origin = await startOrigin({});
    for (let i = 0; i < 40; i++)
      origin.route(path(i), respond(200, { 'cache-control': 'max-age=600' }, `item ${i}`));
  });
  after(async () => {
    for (const node of [...nodes]) await node.close({ keepDir: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await origin.close();
    await nats.close();
  });

  it('a second live node under the same name does not consume and says so; every purge reaches the first; the second takes over when the first stops', async () => {
    const a = await start('edge-dup');
    assert.ok(await ready(a));
    const lines: Array<Record<string, unknown>> = [];
    const b = await start('edge-dup', tempDir(), lines);
    const c = await start('edge-other');
    assert.ok(await ready(c));
    assert.ok(
      await eventually(async () => (await stats(b)).presence.other !== undefined, 5 * INTERVAL_MS),
      'b finds its name held',
    );
    const atB = await stats(b);
    assert.equal(atB.presence.held, false);
    assert.equal(atB.presence.other.pid, process.pid);
    assert.equal(atB.presence.other.host, hostname());
    assert.match(
      atB.lastError,
      /fleet\.node "edge-dup" is held by another live node \(.+ pid \d+, started 20\d\d-/,
    );
    const healthB = await health(b);
    assert.equal(healthB.status, 'degraded');
    assert.match(healthB.fleet, /fleet\.node "edge-dup" is held by another live node/);
    assert.doesNotMatch(healthB.fleet, /pid/, 'the other node’s host and pid stay behind the token');
    assert.deepEqual(await health(a), { status: 'ok' });
    assert.equal((await stats(a)).presence.held, true);
    // What an alert reads: b does not consume, a does.
    const consuming = async (node: typeof a) =>
      /^strata_fleet_consuming (\d)$/m.exec((await node.call('GET', '/metrics')).text)?.[1];
    assert.deepEqual([await consuming(a), await consuming(b)], ['1', '0']);
    const logged = lines.find(
      (line) => line.level === 50 && /held by another live node/.test(String(line.msg)),
    );
    assert.ok(logged, 'b logs an error naming the other node');
    assert.equal((logged.other as { pid: number }).pid, process.pid);
    // b's readiness says why too (with the token).
    assert.match(JSON.parse((await b.call('GET', '/readyz')).text).reason ?? '', /held by another live node/);

    for (let i = 0; i < 20; i++)
      for (const node of [a, b]) assert.match(await cacheStatus(node, path(i)), /fwd=miss/);
    for (let i = 0; i < 20; i++) {
      const result = await c.purge({ urls: [`http://example.test${path(i)}`] });
      assert.equal(result.purged, 0);
    }
    assert.ok(
      await eventually(async () => (await stats(a)).consumed.applied === 20, 15_000),
      'every purge reaches the first node',
    );
    for (let i = 0; i < 20; i++) {
      const response = await a.get(path(i), { headers: HOST });
      assert.equal(response.status, 200);
      assert.equal(response.text, `item ${i}`);
      assert.match(String(response.headers['cache-status']), /fwd=miss/, `purge ${i} applied on a`);
    }
    // b consumed none of them (its copies are what the check warns of).
    assert.equal((await stats(b)).consumed.applied, 0);
    assert.match(await cacheStatus(b, path(0)), /hit/);

    // The first goes away: the second takes the name, applies what it missed, then what follows.
    const stopped = performance.now();
    await stop(a);
    assert.ok(
      await eventually(async () => (await stats(b)).presence.held === true, TAKE_MS),
      'b takes the name',
    );
    const tookMs = performance.now() - stopped;
    process.stderr.write(`# fleet presence: name taken ${Math.round(tookMs)} ms after the holder stopped\n`);
    assert.ok(
      await eventually(async () => (await stats(b)).consumed.applied === 20, 15_000),
      'b applies the purges a took while b waited',
    );
    assert.deepEqual(await health(b), { status: 'ok' });
    assert.equal((await stats(b)).lastError, undefined);
    assert.equal(await consuming(b), '1');
    for (let i = 0; i < 20; i++) assert.match(await cacheStatus(b, path(i)), /fwd=miss/);
    for (let i = 20; i < 25; i++) {
      assert.match(await cacheStatus(b, path(i)), /fwd=miss/);
      await c.purge({ urls: [`http://example.test${path(i)}`] });
    }
    assert.ok(await eventually(async () => (await stats(b)).consumed.applied === 25, 15_000));
    for (let i = 20; i < 25; i++) assert.match(await cacheStatus(b, path(i)), /fwd=miss/);
    await stop(b);
    await stop(c);
  });

  it('a node restarted on its cache while another node holds its name applies, once it takes the name, every purge since its own last one: those before its restart too', async () => {
    const paths = [34, 35, 36, 37, 38].map(path);
    const dir = tempDir();
    let b = await start('edge-resume', dir);
    const c = await start('edge-other-4');
    assert.ok(await ready(b));
    assert.ok(await ready(c));
    for (const target of paths) assert.match(await cacheStatus(b, target), /fwd=miss/);
    await stop(b);
    // While b is down, another node under its name (a copied config) takes the free name and
    // applies the first three purges.
    const a = await start('edge-resume');
    assert.ok(await eventually(async () => (await stats(a)).presence.held === true, TAKE_MS));
    assert.ok(await ready(a));
    for (const target of paths.slice(0, 3)) await c.purge({ urls: [`http://example.test${target}`] });
    assert.ok(await eventually(async () => (await stats(a)).consumed.applied === 3, 15_000));
    // b comes back on its own cache: its name is held, it waits; two more purges meanwhile.
    b = await start('edge-resume', dir);
    assert.ok(await eventually(async () => (await stats(b)).presence.other !== undefined, 5 * INTERVAL_MS));
    for (const target of paths.slice(3)) await c.purge({ urls: [`http://example.test${target}`] });
    assert.ok(await eventually(async () => (await stats(a)).consumed.applied === 5, 15_000));
    assert.equal((await stats(b)).consumed.applied, 0);
    await stop(a);
    assert.ok(await eventually(async () => (await stats(b)).presence.held === true, TAKE_MS));
    assert.ok(await ready(b));
    // Every purge acknowledged under the name reached b's cache: the three from before its
    // restart as well as the two from while it waited.
    assert.ok(
      await eventually(async () => (await stats(b)).consumed.applied === 5, 15_000),
      `b applied ${(await stats(b)).consumed.applied} of 5`,
    );
    for (const target of paths) assert.match(await cacheStatus(b, target), /fwd=miss/, target);
    await stop(b);
    await stop(c);
  });

  it('a waiting node takes the name after the stream was made anew and applies what the holder acknowledged on the new stream', async () => {
    const paths = [39, 38, 37].map(path);
    const c = await start('edge-other-5');
    assert.ok(await ready(c));
    // The stream holds purges from before: its last sequence is well past what follows.
    for (let i = 0; i < 12; i++)
      await c.purge({ urls: [`http://example.test/before/${'b'.repeat(100)}/${i}`] });
    const a = await start('edge-remade');
    assert.ok(await eventually(async () => (await stats(a)).presence.held === true, TAKE_MS));
    assert.ok(await ready(a));
    const b = await start('edge-remade');
    assert.ok(await eventually(async () => (await stats(b)).presence.other !== undefined, 5 * INTERVAL_MS));
    for (const target of paths) assert.match(await cacheStatus(b, target), /fwd=miss/);
    // The stream is deleted under the running fleet; the nodes make it again.
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete('STRATA_PURGES');
      assert.ok(
        await eventually(async () => {
          try {
            const names = (await jsm.consumers.list('STRATA_PURGES').next()).map((info) => info.name);
            return names.includes('edge-remade') && names.includes('edge-other-5');
          } catch {
            return false;
          }
        }, 15_000),
        'the consumers are set up again',
      );
    } finally {
      await nc.close();
    }
    const before = (await stats(a)).consumed.applied;
    for (const target of paths) await c.purge({ urls: [`http://example.test${target}`] });
    assert.ok(await eventually(async () => (await stats(a)).consumed.applied === before + 3, 15_000));
    await stop(a);
    assert.ok(await eventually(async () => (await stats(b)).presence.held === true, TAKE_MS));
    assert.ok(await ready(b));
    assert.ok(
      await eventually(async () => (await stats(b)).consumed.applied === 3, 15_000),
      `b applied ${(await stats(b)).consumed.applied} of 3`,
    );
    for (const target of paths) assert.match(await cacheStatus(b, target), /fwd=miss/, target);
    await stop(b);
    await stop(c);
  });

  it('a node that may read the presence bucket but not write to it consumes once the other holder of its name is gone', async () => {
    const guarded = await startNats({
      conf: [
        'authorization {',
        '  users: [',
        '    { user: "full", password: "full-password-0123456789" }',
        '    { user: "nokv", password: "nokv-password-0123456789",',
        '      permissions: { publish: { deny: ["$KV.STRATA_NODES.>"] } } }',
        '  ]',
        '}',
      ].join('\n'),
    });
    const started: AdminNode[] = [];
    const run = async (name: string, user: string) => {
      const node = await startAdminNode({
        origin: origin.url,
        dir: tempDir(),
        config: {
          fleet: {
            nats: { servers: [guarded.url], user, password: `${user}-password-0123456789` },
            node: name,
            readiness: { catchUpTimeout: '20s' },
            presence: { interval: INTERVAL_MS },
          },
        },
        purge: { retry: { initial: '20ms', max: '200ms' } },
      });
      started.push(node);
      return node;
    };
    try {
      const a = await run('edge-perm', 'full');
      const c = await run('edge-perm-other', 'full');
      assert.ok(await eventually(async () => (await stats(a)).presence.held === true, TAKE_MS));
      assert.ok(await ready(a));
      assert.ok(await ready(c));
      const b = await run('edge-perm', 'nokv');
      assert.ok(await eventually(async () => (await stats(b)).presence.other !== undefined, 5 * INTERVAL_MS));
      const target = path(39);
      assert.match(await cacheStatus(b, target), /fwd=miss|hit/);
      await a.close();
      started.splice(started.indexOf(a), 1);
      // The name is free, but b cannot write it: no live node holds it, so b consumes, saying
      // why in its last error, and claims no conflict.
      assert.ok(
        await eventually(async () => (await stats(b)).presence.other === undefined, TAKE_MS),
        'b no longer names a gone node as holding its name',
      );
      const atB = await stats(b);
      assert.match(atB.lastError, /cannot be checked in bucket STRATA_NODES/);
      assert.deepEqual(await health(b), { status: 'ok' });
      await c.purge({ urls: [`http://example.test${target}`] });
      assert.ok(
        await eventually(async () => (await stats(b)).consumed.applied === 1, 15_000),
        'the purge reaches b',
      );
      assert.match(await cacheStatus(b, target), /fwd=miss/);
    } finally {
      for (const node of started) await node.close();
      await guarded.close();
    }
  });

  it('a holder stopped in the middle of a burst hands the purges it had received but not applied to the node taking its name at once, not after the ack wait', async () => {
    const a = await start('edge-burst');
    assert.ok(await eventually(async () => (await stats(a)).presence.held === true, TAKE_MS));
    assert.ok(await ready(a));
    const b = await start('edge-burst');
    assert.ok(await eventually(async () => (await stats(b)).presence.other !== undefined, 5 * INTERVAL_MS));
    const cached = [40, 41].map(path);
    for (const [i, target] of cached.entries()) {
      origin.route(target, respond(200, { 'cache-control': 'max-age=600' }, `burst item ${i}`));
      assert.match(await cacheStatus(b, target), /fwd=miss/);
    }
    // 400 purges from another node reach the stream at once (its last two remove what b holds).
    const count = 400;
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const sent: Array<Promise<unknown>> = [];
      for (let i = 1; i <= count; i++) {
        const target = i > count - 2 ? cached[count - i]! : `/burst/${'b'.repeat(100)}/${i}?page=${i}`;
        const command = {
          urls: [`http://example.test${target}`],
          prefixes: [],
          tags: [],
          all: false,
          soft: i % 2 === 0 && i <= count - 2,
        };
        const purge = { v: 1, node: 'node-burst-elsewhere', sequence: i, command, at: Date.now() };
        sent.push(js.publish('strata.purges', JSON.stringify(purge)));
      }
      await Promise.all(sent);
    } finally {
      await nc.close();
    }
    // a stops while it applies them: what it received and did not apply goes back to the stream.
    const before = (await stats(b)).applied;
    await stop(a);
    assert.ok(await eventually(async () => (await stats(b)).presence.held === true, TAKE_MS));
    assert.ok(
      await eventually(async () => (await stats(b)).consumed.applied === count, 10_000),
      `b applied ${(await stats(b)).consumed.applied} of ${count} (from ${before})`,
    );
    assert.ok(await ready(b));
    for (const target of cached) assert.match(await cacheStatus(b, target), /fwd=miss/, target);
    await stop(b);
  });

  it('a name whose holder stopped refreshing it (a crash elsewhere) is taken once 3 intervals pass, not before', async () => {
    await holdByHand('edge-stale', {
      instance: 'gone-instance',
      node: 'node-elsewhere',
      host: 'edge-fra-9.example.net',
      pid: 4242,
      started: '2026-01-02T03:04:05.000Z',
    });
    const waitFrom = performance.now();
    const lines: Array<Record<string, unknown>> = [];
    const e = await start('edge-stale', tempDir(), lines);
    assert.ok(await eventually(async () => (await stats(e)).presence.other !== undefined, 5 * INTERVAL_MS));
    const conflicted = await stats(e);
    assert.match(
      conflicted.lastError,
      /edge-fra-9\.example\.net pid 4242, started 2026-01-02T03:04:05\.000Z/,
    );
    assert.equal((await health(e)).status, 'degraded');
    assert.ok(await eventually(async () => (await stats(e)).presence.held === true, TAKE_MS));
    const waited = performance.now() - waitFrom;
    assert.ok(waited >= 3 * INTERVAL_MS, `taken after ${waited} ms, before 3 intervals`);
    assert.ok(lines.some((line) => /taken over/.test(String(line.msg))));
    assert.ok(await ready(e));
    assert.deepEqual(await health(e), { status: 'ok' });
    await stop(e);
  });

  it('a bus outage longer than 3 intervals does not count as the holder going stale: the waiting node judges it from its next reads', async () => {
    const entry = {
      instance: 'held-elsewhere',
      node: 'node-elsewhere',
      host: 'edge-fra-8.example.net',
      pid: 4343,
      started: '2026-01-02T03:04:05.000Z',
    };
    await holdByHand('edge-outage', entry);
    // The holder, refreshing its entry every interval while it is reachable.
    let paused = false;
    let done = false;
    const refresher = (async () => {
      let last = 0;
      for (let round = 0; round < 2000 && !done; round++) {
        if (!paused && performance.now() - last >= INTERVAL_MS) {
          last = performance.now();
          await holdByHand('edge-outage', entry).catch(() => {});
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const lines: Array<Record<string, unknown>> = [];
    try {
      const w = await start('edge-outage', tempDir(), lines);
      assert.ok(await eventually(async () => (await stats(w)).presence.other !== undefined, 5 * INTERVAL_MS));
      paused = true;
      await nats.stop();
      await new Promise((resolve) => setTimeout(resolve, 4.5 * INTERVAL_MS));
      await nats.start();
      assert.ok(await eventually(async () => (await stats(w)).connected === true, 15_000));
      // The holder reconnects more slowly (two intervals), then refreshes again.
      await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
      paused = false;
      const watchUntil = performance.now() + 3 * INTERVAL_MS;
      while (performance.now() < watchUntil) {
        assert.equal((await stats(w)).presence.held, false, 'the live holder’s name is not taken');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(!lines.some((line) => /taken over/.test(String(line.msg))));
      await stop(w);
    } finally {
      done = true;
      await refresher;
    }
  });

  it('a node restarted on its own cache directory takes its name back at once: after a stop, and after a crash (its pid gone)', async () => {
    const dir = tempDir();
    let r = await start('edge-restart', dir);
    assert.ok(await ready(r));
    const nodeId = r.node.purge.nodeId;
    await stop(r);
    // A quick restart after a clean stop: the name was given back, so it is free (no other
    // holder seen, nothing taken over). Judged by what the node says, not by time: NATS calls
    // take seconds on a loaded machine.
    const again: Array<Record<string, unknown>> = [];
    r = await start('edge-restart', dir, again);
    assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
    assertNoConflict(again);
    assert.ok(await ready(r));
    await stop(r);
    // A crash: the entry of the previous run is fresh, its process gone (same cache, host, boot).
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    let boot: string | undefined;
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {}
    await holdByHand('edge-restart', {
      instance: 'crashed-instance',
      node: nodeId,
      host: hostname(),
      ...(boot ? { boot } : {}),
      pid: dead,
      started: new Date().toISOString(),
    });
    const lines: Array<Record<string, unknown>> = [];
    r = await start('edge-restart', dir, lines);
    assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
    // Taken back as its own previous run's, not waited out as another node's.
    assert.ok(lines.some((line) => /taken back from this node’s previous run/.test(String(line.msg))));
    assertNoConflict(lines);
    assert.deepEqual(await health(r), { status: 'ok' });
    // It consumes: a purge from another node reaches it.
    const other = await start('edge-other-2');
    assert.ok(await ready(other));
    assert.ok(await ready(r));
    assert.match(await cacheStatus(r, path(30)), /fwd=miss/);
    await other.purge({ urls: [`http://example.test${path(30)}`] });
    assert.ok(await eventually(async () => (await stats(r)).consumed.applied === 1, 10_000));
    assert.match(await cacheStatus(r, path(30)), /fwd=miss/);
    await stop(r);
    await stop(other);
  });

  it('a bus whose consumer does not stop in time still gives its name back: a restart on its cache directory takes it at once', async () => {
    const dir = tempDir();
    let r = await start('edge-slow-stop', dir);
    assert.ok(await ready(r));
    // Its consumer reads the bus: its own purge comes back to it (and is skipped).
    await r.purge({ urls: [`http://example.test${path(31)}`] });
    assert.ok(await eventually(async () => (await stats(r)).consumed.own === 1, 10_000));
    // The consumer's last step at a stop (recording how far it got) never ends: the bus stops
    // past its bound, and closes its connection under the consumer.
    const store = r.node.store;
    const readMeta = store.readMeta.bind(store);
    store.readMeta = (name: string) => (name.startsWith('purgeFrom:') ? undefined : readMeta(name));
    let held = 0;
    store.writeMeta = (name: string) => {
      if (name.startsWith('purgeFrom:')) held++;
      return new Promise<boolean>(() => {});
    };
    await stop(r);
    assert.equal(held, 1, 'the consumer’s stop was held');
    const lines: Array<Record<string, unknown>> = [];
    r = await start('edge-slow-stop', dir, lines);
    assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
    assertNoConflict(lines);
    assert.deepEqual(await health(r), { status: 'ok' });
    await stop(r);
  });

  it('a node stopped while its consumer is being set up stops within the bus bound, and gives its name back', async () => {
    for (let round = 1; round <= 4; round++) {
      const dir = tempDir();
      const lines: Array<Record<string, unknown>> = [];
      const name = `edge-early-stop-${round}`;
      let r = await start(name, dir, lines);
      // The name taken: the consumer is told to start, and is setting up (stream, consumer) now.
      assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
      await stop(r);
      assert.ok(
        !lines.some((line) => /did not stop in time/.test(String(line.msg))),
        `round ${round}: ${JSON.stringify(lines.filter((line) => Number(line.level) >= 40))}`,
      );
      const again: Array<Record<string, unknown>> = [];
      r = await start(name, dir, again);
      assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
      assertNoConflict(again);
      await stop(r);
    }
  });

  it('a `strata serve` killed with SIGKILL and started again on its cache directory takes its name back at once and replays what it missed', async () => {
    const dir = tempDir();
    const fleet = {
      nats: { servers: [nats.url] },
      node: 'edge-killed',
      presence: { interval: INTERVAL_MS },
    };
    const child = await serveProcess(
      'killed',
      dir,
      {
        fleet,
        // Where startNode keeps the cache of a node started on `join(dir, 'killed')`.
        cache: { dir: join(dir, 'killed', 'cache') },
        origins: [{ name: 'origin', url: origin.url }],
        sites: [{ name: 'shop', hosts: ['*'], origins: ['origin'] }],
      },
      await freePort(),
    );
    const childStats = async () => {
      const auth = { authorization: `Bearer ${FLEET_TOKEN}` };
      const body = (await (await fetch(`${child.admin}/stats`, { headers: auth })).json()) as {
        fleet: { presence: { held: boolean }; ready: { ready: boolean } };
      };
      return body.fleet;
    };
    try {
      assert.ok(await eventually(async () => (await childStats()).presence.held === true, 10_000));
      assert.ok(await eventually(async () => (await childStats()).ready.ready === true, 15_000));
    } catch (error) {
      child.child.kill('SIGKILL');
      throw error;
    }
    child.child.kill('SIGKILL');
    await child.exited;
    const other = await start('edge-other-3');
    assert.ok(await ready(other));
    for (let i = 31; i < 34; i++) await other.purge({ urls: [`http://example.test${path(i)}`] });
    // Its entry is still fresh: a node from elsewhere would wait it out.
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create('STRATA_NODES', { history: 1 });
      const entry = await kv.get('STRATA_PURGES.edge-killed');
      assert.equal(entry?.operation, 'PUT');
      assert.equal(JSON.parse(entry!.string()).pid, child.child.pid);
    } finally {
      await nc.close();
    }
    const lines: Array<Record<string, unknown>> = [];
    const r = await start('edge-killed', join(dir, 'killed'), lines);
    assert.ok(await eventually(async () => (await stats(r)).presence.held === true, TAKE_MS));
    // Not waited out: taken back as its own previous run's (the log says which).
    assertNoConflict(lines);
    assert.ok(lines.some((line) => /taken back from this node’s previous run/.test(String(line.msg))));
    assert.ok(await eventually(async () => (await stats(r)).consumed.applied === 3, 15_000));
    assert.ok(await ready(r));
    await stop(r);
    await stop(other);
  });
});
