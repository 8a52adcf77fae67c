/**
 * The fleet bus on a real nats-server (JetStream, loopback, temp store): purges reach every
 * node through the stream, a node that was down replays what it missed before it says it is
 * ready, a purge is applied once per node, the bus may be down, and the shared configuration
 * is applied or rejected. Skipped when nats-server is not installed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { natsMissing, startNats, type TestNats } from '../helpers/nats.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, eventually, startAdminNode } from './purge-support.ts';

const skip = natsMissing();
const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;
const run = promisify(execFile);
const LONG = `/assets/${'l'.repeat(120)}.css`;

describe('fleet bus on NATS JetStream', { skip }, () => {
  let nats: TestNats;
  let origin: TestOrigin;
  const nodes: AdminNode[] = [];
  const dirs: string[] = [];

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-'));
    dirs.push(dir);
    return dir;
  };
  const fleet = (name: string, extra: Record<string, unknown> = {}) => ({
    nats: { servers: [nats.url] },
    node: name,
    readiness: { catchUpTimeout: '20s' },
    ...extra,
  });
  const start = async (name: string, dir = tempDir(), extra: Record<string, unknown> = {}) => {
    const node = await startAdminNode({
      origin: origin.url,
      dir,
      config: { fleet: fleet(name, extra) },
      purge: { retry: { initial: '20ms', max: '200ms' } },
    });
    nodes.push(node);
    return node;
  };
  const stop = async (node: AdminNode) => {
    nodes.splice(nodes.indexOf(node), 1);
    await node.close({ keepDir: true });
  };
  const stats = async (node: AdminNode) => JSON.parse((await node.call('GET', '/stats')).text);
  const connected = (node: AdminNode) =>
    eventually(async () => (await stats(node)).fleet?.connected === true, 10_000);
  /** The node's consumer is set up and caught up (ready). */
  const ready = (node: AdminNode) =>
    eventually(async () => (await node.call('GET', '/readyz')).status === 200, 15_000);
  const cacheStatus = async (node: AdminNode, path: string) =>
    String((await node.get(path, { headers: { host: 'example.test' } })).headers['cache-status']);

  before(async () => {
    nats = await startNats();
    origin = await startOrigin({
      '/a': respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'a' }, 'a'),
      [LONG]: respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'long' }, 'long body'),
    });
    for (let i = 0; i < 1000; i++)
      origin.route(`/k/${i}`, respond(200, { 'cache-control': 'max-age=600' }, `k${i}`));
  });
  after(async () => {
    for (const node of [...nodes]) await node.close({ keepDir: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await origin.close();
    await nats.close();
  });

  it('a purge accepted at node A reaches node B through the bus, and A applies it once', async () => {
    const a = await start('a');
    const b = await start('b');
    assert.ok(await ready(a));
    assert.ok(await ready(b));
    for (const node of [a, b]) {
      assert.match(await cacheStatus(node, '/a'), /fwd=miss/);
      assert.match(await cacheStatus(node, LONG), /fwd=miss/);
      assert.match(await cacheStatus(node, LONG), /hit/);
    }
    const before = origin.count(LONG);
    const result = await a.purge({ urls: [`http://example.test${LONG}`] });
    assert.equal(result.purged, 1);
    assert.ok(await eventually(async () => (await stats(b)).fleet.consumed.applied === 1, 10_000));
    const atB = await b.get(LONG, { headers: { host: 'example.test' } });
    assert.equal(atB.status, 200);
    assert.equal(atB.text, 'long body');
    assert.match(String(atB.headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count(LONG), before + 1);
    // A sees its own purge come back from the stream and does not apply it again.
    assert.ok(await eventually(async () => (await stats(a)).fleet.consumed.own === 1, 10_000));
    const aStats = await stats(a);
    assert.equal(aStats.fleet.consumed.applied, 0);
    assert.equal(aStats.purge.sequence ?? a.node.purge.log.sequence, a.node.purge.log.sequence);
    assert.equal(a.node.purge.log.sequence, 1);
    assert.equal(b.node.purge.log.sequence, 1);
    // /a was not purged anywhere.
    assert.match(await cacheStatus(b, '/a'), /hit/);
    const metrics = (await b.call('GET', '/metrics')).text;
    assert.match(metrics, /strata_fleet_purges_consumed_total\{outcome="applied"\} 1/);
    assert.match(metrics, /strata_fleet_bus_connected 1/);
    await stop(a);
    await stop(b);
  });

  it('a node down while 1,000 purges are published is not ready until it has replayed them, then serves none of the purged objects', async () => {
    const dirC = tempDir();
    let c = await start('c', dirC);
    const d = await start('d');
    assert.ok(await ready(c));
    assert.ok(await ready(d));
    for (let i = 0; i < 200; i++) await c.get(`/k/${i}`, { headers: { host: 'example.test' } });
    assert.equal(origin.count('/k/199'), 1);
    await stop(c);
    // One through d's admin API, 999 as other nodes publish them.
    await d.purge({ urls: ['http://example.test/k/0'] });
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const sent = [];
      for (let i = 1; i < 1000; i++) {
        const command = {
          urls: [`http://example.test/k/${i}`],
          prefixes: [],
          tags: [],
          all: false,
          soft: false,
        };
        const purge = { v: 1, node: `elsewhere-${i % 3}`, sequence: i, command, at: Date.now() };
        sent.push(js.publish('strata.purges', JSON.stringify(purge), { msgID: `elsewhere-${i % 3}:${i}` }));
      }
      await Promise.all(sent);
    } finally {
      await nc.close();
    }
    const started = performance.now();
    c = await start('c', dirC);
    const first = await c.call('GET', '/readyz');
    // Usually caught mid-replay; on a fast machine the replay may already be done.
    if (first.status === 503) assert.match(JSON.parse(first.text).reason, /purge bus/);
    assert.ok(await ready(c));
    const replayMs = performance.now() - started;
    const fleetStats = (await stats(c)).fleet;
    assert.equal(fleetStats.consumed.applied, 1000);
    assert.equal(fleetStats.catchUp.target, fleetStats.applied);
    process.stderr.write(`# fleet bus: 1,000 purges replayed and ready after ${Math.round(replayMs)} ms\n`);
    for (let i = 0; i < 200; i += 13) {
      const response = await c.get(`/k/${i}`, { headers: { host: 'example.test' } });
      assert.equal(response.status, 200);
      assert.equal(response.text, `k${i}`);
      assert.match(String(response.headers['cache-status']), /fwd=miss/);
      assert.equal(origin.count(`/k/${i}`), 2);
    }
    await stop(c);
    await stop(d);
  });

  it('a node whose consumer was deleted while it was down replays from what its cache applied, not from now', async () => {
    const dirP = tempDir();
    let p = await start('p', dirP);
    const q = await start('q');
    assert.ok(await ready(p));
    assert.ok(await ready(q));
    // p applies one purge from the bus, so its cache knows how far it got in this stream.
    await q.purge({ urls: ['http://example.test/k/900'] });
    assert.ok(await eventually(async () => (await stats(p)).fleet.consumed.applied === 1, 10_000));
    assert.match(await cacheStatus(p, '/k/901'), /fwd=miss/);
    assert.match(await cacheStatus(p, '/k/901'), /hit/);
    await stop(p);
    const nc = await connect({ servers: nats.url });
    try {
      await (await jetstreamManager(nc)).consumers.delete('STRATA_PURGES', 'p');
    } finally {
      await nc.close();
    }
    await q.purge({ urls: ['http://example.test/k/901'] });
    const before = origin.count('/k/901');
    p = await start('p', dirP);
    assert.ok(await ready(p));
    assert.ok(await eventually(async () => (await stats(p)).fleet.consumed.applied === 1, 10_000));
    assert.match(
      await cacheStatus(p, '/k/901'),
      /fwd=miss/,
      'the purge published while p was away is applied',
    );
    assert.equal(origin.count('/k/901'), before + 1);
    await stop(p);
    await stop(q);
  });

  it('applies a purge once: published twice with one id, and every message delivered again after a restart', async () => {
    const e = await start('e');
    assert.ok(await ready(e));
    await e.get('/a', { headers: { host: 'example.test' } });
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const message = JSON.stringify({
        v: 1,
        node: 'someone-else',
        sequence: 7,
        command: { urls: [], prefixes: [], tags: ['a'], all: false, soft: false },
        at: Date.now(),
      });
      const first = await js.publish('strata.purges', message, { msgID: 'someone-else:7' });
      const again = await js.publish('strata.purges', message, { msgID: 'someone-else:7' });
      assert.equal(again.duplicate, true);
      assert.equal(again.seq, first.seq);
      // The same purge under another id (a publisher that lost its cursor) is a second message.
      await js.publish('strata.purges', message, { msgID: 'someone-else:7b' });
    } finally {
      await nc.close();
    }
    assert.ok(
      await eventually(async () => {
        const consumed = (await stats(e)).fleet.consumed;
        return consumed.applied === 2;
      }, 10_000),
    );
    const sequence = e.node.purge.log.sequence;
    await stop(e);
    // Every message delivered again: e's consumer made anew from the stream's start while e is down.
    const admin = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(admin);
      await jsm.consumers.delete('STRATA_PURGES', 'e');
      await jsm.consumers.add('STRATA_PURGES', {
        durable_name: 'e',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: 'strata.purges',
      });
    } finally {
      await admin.close();
    }
    const again = await start('e', e.dir);
    assert.ok(await ready(again));
    assert.ok(await eventually(async () => (await stats(again)).fleet.consumed.duplicate > 0, 10_000));
    assert.equal((await stats(again)).fleet.consumed.applied, 0);
    assert.equal(again.node.purge.log.sequence, sequence);
    await stop(again);
  });

  it('with the bus down at start the node serves and purges locally, and publishes once the bus returns', async () => {
    const f = await start('f');
    assert.ok(await ready(f));
    const g = await start('g');
    assert.ok(await ready(g));
    await stop(f);
    await nats.stop();
    const dirF = f.dir;
    const restarted = await start('f', dirF, { readiness: { catchUpTimeout: '300ms' } });
    assert.equal((await stats(restarted)).fleet.connected, false);
    assert.match(await cacheStatus(restarted, '/a'), /fwd=miss/);
    assert.match(await cacheStatus(restarted, '/a'), /hit/);
    const purged = await restarted.purge({ tags: ['a'] });
    assert.equal(purged.purged, 1);
    assert.match(await cacheStatus(restarted, '/a'), /fwd=miss/);
    // Past catchUpTimeout a node without its bus is ready, with a warning.
    assert.ok(await eventually(async () => (await restarted.call('GET', '/readyz')).status === 200, 5000));
    assert.match((await restarted.call('GET', '/readyz')).text, /unreachable/);
    assert.equal((await stats(restarted)).fleet.publishPending, 1);
    await g.get('/a', { headers: { host: 'example.test' } });
    assert.match(await cacheStatus(g, '/a'), /hit/);
    await nats.start();
    assert.ok(await connected(restarted));
    assert.ok(await eventually(async () => (await stats(restarted)).fleet.published === 1, 15_000));
    assert.ok(await eventually(async () => (await stats(g)).fleet.consumed.applied === 1, 15_000));
    assert.match(await cacheStatus(g, '/a'), /fwd=miss/);
    await stop(restarted);
    await stop(g);
  });

  it('rejects a bad shared configuration with its reason and keeps serving, then applies a good one', async () => {
    const other = await startOrigin({ '/b': respond(200, { 'cache-control': 'max-age=600' }, 'from other') });
    try {
      const h = await start('h', tempDir(), { config: { key: 'edges' } });
      assert.ok(await ready(h));
      assert.equal((await h.get('/a', { headers: { host: 'shared.test' } })).text, 'a');
      const nc = await connect({ servers: nats.url });
      try {
        const kv = await new Kvm(nc).create('STRATA_CONFIG');
        await kv.put('edges', 'sites:\n  - name: shared\n    hosts: [shared.test]\n    origins: [nowhere]\n');
        assert.ok(await eventually(async () => (await stats(h)).fleet.config.status === 'rejected', 10_000));
        const rejected = (await stats(h)).fleet.config;
        assert.match(rejected.reason, /no origin named "nowhere"/);
        assert.equal(rejected.inForce, 0);
        assert.equal((await h.get('/a', { headers: { host: 'shared.test' } })).text, 'a');
        await kv.put(
          'edges',
          `origins:\n  - name: other\n    url: ${other.url}\nsites:\n  - name: shared\n    hosts: ["*"]\n    origins: [other]\n`,
        );
        assert.ok(await eventually(async () => (await stats(h)).fleet.config.status === 'applied', 10_000));
        const answer = await h.get('/b', { headers: { host: 'shared.test' } });
        assert.equal(answer.status, 200);
        assert.equal(answer.text, 'from other');
        assert.match(String(answer.headers['cache-status']), /fwd=miss/);
        assert.equal(other.count('/b'), 1);
        const metrics = (await h.call('GET', '/metrics')).text;
        assert.match(metrics, /strata_fleet_config_updates_total\{outcome="rejected"\} 1/);
        assert.match(metrics, /strata_fleet_config_updates_total\{outcome="applied"\} 1/);
        // The bucket is lost and made anew (revisions from 1 again): its values are applied,
        // not skipped until the revision passes the old one.
        const before = (await stats(h)).fleet.config.revision;
        assert.ok(before >= 2);
        await jetstreamManager(nc).then((jsm) => jsm.streams.delete('KV_STRATA_CONFIG'));
        const fresh = await new Kvm(nc).create('STRATA_CONFIG');
        await fresh.put('edges', 'sites:\n  - name: shared\n    hosts: ["*"]\n    origins: [origin]\n');
        assert.ok(
          await eventually(async () => (await stats(h)).fleet.config.revision === 1, 15_000),
          "the new bucket's revision 1 is taken",
        );
        assert.equal((await stats(h)).fleet.config.status, 'applied');
        assert.equal((await h.get('/a', { headers: { host: 'shared.test' } })).text, 'a');
      } finally {
        await nc.close();
      }
      await stop(h);
    } finally {
      await other.close();
    }
  });
  it('started while the key holds a rejected value, puts in force the last revision that applies, as the running nodes have it', async () => {
    const other = await startOrigin({ '/b': respond(200, { 'cache-control': 'max-age=600' }, 'from other') });
    const nc = await connect({ servers: nats.url });
    try {
      // A bucket of its own, made as the node and `fleet config put` make it (history 10).
      const kv = await new Kvm(nc).create('RESTART_CONFIG', { history: 10 });
      const good = await kv.put(
        'restart-edges',
        `origins:\n  - name: other\n    url: ${other.url}\nsites:\n  - name: shared\n    hosts: ["*"]\n    origins: [other]\n`,
      );
      const bad = await kv.put(
        'restart-edges',
        'sites:\n  - name: shared\n    hosts: [shared.test]\n    origins: [nowhere]\n',
      );
      const r = await start('r', tempDir(), { config: { bucket: 'RESTART_CONFIG', key: 'restart-edges' } });
      assert.ok(await ready(r));
      assert.ok(await eventually(async () => (await stats(r)).fleet.config.status === 'rejected', 10_000));
      const config = (await stats(r)).fleet.config;
      assert.equal(config.revision, bad);
      assert.match(config.reason, /no origin named "nowhere"/);
      assert.equal(config.inForce, good, 'the revision the running nodes kept');
      const answer = await r.get(`/b?${'q'.repeat(120)}`, { headers: { host: 'shared.test' } });
      assert.equal(answer.text, 'from other');
      assert.equal(other.requests.filter((req) => req.path.startsWith('/b?')).length, 1);
      await stop(r);
    } finally {
      await nc.close();
      await other.close();
    }
  });
  it('rejects a shared configuration whose https origin names a CA file without a certificate, with that reason, and keeps serving', async () => {
    const dir = tempDir();
    const notPem = join(dir, 'ca.pem');
    writeFileSync(notPem, 'not a certificate\n');
    const value = `origins:\n  - { name: secure, url: "https://127.0.0.1:9", tls: { ca: "${notPem}" } }\nsites:\n  - { name: s, hosts: ["*"], origins: [secure] }\n`;
    const k = await start('k', tempDir(), { config: { key: 'ca-edges' } });
    assert.ok(await ready(k));
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create('STRATA_CONFIG');
      const revision = await kv.put('ca-edges', value);
      assert.ok(
        await eventually(async () => (await stats(k)).fleet.config.revision === revision, 10_000),
        'the value is seen',
      );
      const config = (await stats(k)).fleet.config;
      assert.equal(config.status, 'rejected');
      assert.equal(config.inForce, 0);
      assert.match(config.reason, /holds no PEM certificate/);
      assert.match(
        (await k.call('GET', '/metrics')).text,
        /strata_fleet_config_updates_total\{outcome="rejected"\} 1/,
      );
      const answer = await k.get('/a', { headers: { host: 'shared.test' } });
      assert.equal(answer.status, 200);
      assert.equal(answer.text, 'a');
      // Given the node's file, put refuses what the node would reject.
      const nodeFile = join(dir, 'node.yaml');
      writeFileSync(nodeFile, `fleet:\n  nats: { servers: ["${nats.url}"] }\n  config: { key: ca-edges }\n`);
      const file = join(dir, 'shared.yaml');
      writeFileSync(file, value);
      const refused = await run(process.execPath, [
        CLI,
        'fleet',
        'config',
        'put',
        file,
        '--config',
        nodeFile,
      ]).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(refused?.code, 1);
      assert.match(refused?.stderr ?? '', /origins\[0\]\.tls\.ca: .*holds no PEM certificate/);
      assert.equal((await kv.get('ca-edges'))?.revision, revision, 'nothing put');
    } finally {
      await nc.close();
    }
    await stop(k);
  });
  it('strata fleet config put refuses a file that is not a shared configuration, and puts one that is', async () => {
    const other = await startOrigin({ '/c': respond(200, { 'cache-control': 'max-age=600' }, 'from cli') });
    const dir = tempDir();
    try {
      const i = await start('i', tempDir(), { config: { key: 'cli-edges' } });
      assert.ok(await ready(i));
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, 'cache: { dir: /tmp/x }\n');
      const refused = await run(
        process.execPath,
        [CLI, 'fleet', 'config', 'put', bad, '--server', nats.url, '--key', 'cli-edges'],
        {
          env: { ...process.env, STRATA_CONFIG: '' },
        },
      ).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(refused?.code, 1);
      assert.match(refused?.stderr ?? '', /cache: not a shared section/);
      // Given a node's file, what that node would reject is not put.
      const nodeFile = join(dir, 'node.yaml');
      writeFileSync(nodeFile, `fleet:\n  nats: { servers: ["${nats.url}"] }\n  config: { key: cli-edges }\n`);
      const dangling = join(dir, 'dangling.yaml');
      writeFileSync(
        dangling,
        'origins:\n  - { name: o, url: "http://127.0.0.1:9" }\nsites:\n  - { name: s, hosts: ["*"], origins: [nope] }\n',
      );
      const checked = await run(
        process.execPath,
        [CLI, 'fleet', 'config', 'put', dangling, '--config', nodeFile],
        {
          env: { ...process.env, STRATA_CONFIG: '' },
        },
      ).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(checked?.code, 1);
      assert.match(checked?.stderr ?? '', /no origin named "nope"/);
      assert.match(checked?.stderr ?? '', /from the shared configuration/);
      const good = join(dir, 'edges.yaml');
      writeFileSync(
        good,
        `origins:\n  - { name: other, url: "${other.url}" }\nsites:\n  - { name: cli, hosts: ["*"], origins: [other] }\n`,
      );
      // A server nobody listens on is named in the one line the CLI prints.
      const closed = await unusedPort();
      const unreachable = await run(
        process.execPath,
        [CLI, 'fleet', 'config', 'put', good, '--server', `nats://127.0.0.1:${closed}`, '--key', 'cli-edges'],
        { env: { ...process.env, STRATA_CONFIG: '' } },
      ).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(unreachable?.code, 1);
      assert.match(
        unreachable?.stderr ?? '',
        new RegExp(`cannot reach NATS at nats://127\\.0\\.0\\.1:${closed}: `),
      );
      const put = await run(
        process.execPath,
        [CLI, 'fleet', 'config', 'put', good, '--server', nats.url, '--key', 'cli-edges'],
        {
          env: { ...process.env, STRATA_CONFIG: '' },
        },
      );
      assert.match(put.stdout, /put as cli-edges, revision \d+/);
      assert.ok(await eventually(async () => (await stats(i)).fleet.config.status === 'applied', 10_000));
      const answer = await i.get('/c', { headers: { host: 'cli.test' } });
      assert.equal(answer.text, 'from cli');
      assert.equal(other.count('/c'), 1);
      await stop(i);
    } finally {
      await other.close();
    }
  });
});

/** A loopback port nothing listens on (taken and let go). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Nodes a and b of a fleet on `nats` (own cache directories), both ready. */
async function startPair(
  nats: TestNats,
  origin: TestOrigin,
): Promise<{ nodes: [AdminNode, AdminNode]; dirs: string[] }> {
  const nodes: AdminNode[] = [];
  const dirs: string[] = [];
  for (const name of ['a', 'b']) {
    const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-'));
    dirs.push(dir);
    nodes.push(
      await startAdminNode({
        origin: origin.url,
        dir,
        config: {
          fleet: { nats: { servers: [nats.url] }, node: name, readiness: { catchUpTimeout: '20s' } },
        },
        purge: { retry: { initial: '20ms', max: '200ms' } },
      }),
    );
  }
  for (const node of nodes)
    assert.ok(await eventually(async () => (await node.call('GET', '/readyz')).status === 200, 15_000));
  return { nodes: nodes as [AdminNode, AdminNode], dirs };
}

/** Stops what startPair started, then the origin and the server. */
async function stopPair(
  pair: { nodes: AdminNode[]; dirs: string[] },
  origin: TestOrigin,
  nats: TestNats,
): Promise<void> {
  for (const node of pair.nodes) await node.close();
  for (const dir of pair.dirs) rmSync(dir, { recursive: true, force: true });
  await origin.close();
  await nats.close();
}

describe('a purge larger than the bus takes in one message', { skip }, () => {
  it('goes in parts that every node applies, and the purges behind it are published too', async () => {
    const nats = await startNats({ maxPayload: 64 * 1024 });
    const origin = await startOrigin({});
    for (let i = 0; i < 50; i++)
      origin.route(
        `/k/${i}`,
        respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'k' }, `k${i}`),
      );
    origin.route('/t', respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'later' }, 't'));
    const { nodes, dirs } = await startPair(nats, origin);
    try {
      const [a, b] = nodes;
      const get = (node: AdminNode, path: string) => node.get(path, { headers: { host: 'example.test' } });
      for (const path of ['/k/49', '/t']) {
        await get(b, path);
        assert.match(String((await get(b, path)).headers['cache-status']), /hit/);
      }
      // 1,500 URLs of ~120 characters: about 190 KB, three times the server's max_payload.
      const urls = Array.from(
        { length: 1500 },
        (_, i) => `http://example.test/k/${i < 50 ? i : `${i}/${'p'.repeat(90)}`}`,
      );
      assert.equal((await a.purge({ urls })).purged, 0);
      await a.purge({ tags: ['later'] });
      // Read without refilling: /cache answers 404 once nothing is stored for the URL.
      const stored = async (path: string) =>
        (await b.call('GET', `/cache?url=${encodeURIComponent(`http://example.test${path}`)}`)).status ===
        200;
      assert.ok(await eventually(async () => !(await stored('/t')), 15_000), 'the purge behind it reached b');
      assert.equal(await stored('/k/49'), false, 'the large purge reached b (it came first)');
      assert.equal(await stored('/k/0'), false);
      assert.match(String((await get(b, '/k/49')).headers['cache-status']), /fwd=miss/);
      const published = JSON.parse((await a.call('GET', '/stats')).text).fleet;
      assert.equal(published.publishPending, 0);
      assert.equal(published.lastError ?? undefined, undefined);
    } finally {
      await stopPair({ nodes, dirs }, origin, nats);
    }
  });
});

describe('a purge stream that disappears', { skip }, () => {
  it('is made again by the running nodes, which consume from it again: purges keep reaching every node', async () => {
    const nats = await startNats();
    const origin = await startOrigin({});
    origin.route(
      LONG,
      respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'long' }, 'long body'),
    );
    const { nodes, dirs } = await startPair(nats, origin);
    try {
      const [a, b] = nodes;
      // The stream is deleted under the running fleet (an operator's mistake, a lost store).
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete('STRATA_PURGES');
        // The nodes make it again, with their consumers.
        assert.ok(
          await eventually(async () => {
            try {
              const consumers = await jsm.consumers.list('STRATA_PURGES').next();
              return (
                consumers
                  .map((info) => info.name)
                  .sort()
                  .join(',') === 'a,b'
              );
            } catch {
              return false;
            }
          }, 15_000),
          'both consumers set up again',
        );
      } finally {
        await nc.close();
      }
      const stored = async () =>
        (await b.call('GET', `/cache?url=${encodeURIComponent(`http://example.test${LONG}`)}`)).status ===
        200;
      await b.get(LONG, { headers: { host: 'example.test' } });
      assert.ok(await stored());
      await a.purge({ tags: ['long'] });
      assert.ok(
        await eventually(async () => !(await stored()), 15_000),
        'the purge reached b through the new stream',
      );
      // The trouble is over: /stats no longer shows it as the bus's last error.
      for (const node of [a, b]) {
        const fleet = JSON.parse((await node.call('GET', '/stats')).text).fleet;
        assert.equal(fleet.lastError, undefined, `${fleet.node}: ${fleet.lastError}`);
      }
    } finally {
      await stopPair({ nodes, dirs }, origin, nats);
    }
  });
});

describe('purges that left the stream while a node was down', { skip }, () => {
  it('are named in its readiness answer from then on (ready, with a warning), and logged', async () => {
    const nats = await startNats();
    const origin = await startOrigin({});
    const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-'));
    const fleet = {
      nats: { servers: [nats.url] },
      node: 'r',
      stream: 'STRATA_R',
      subject: 'strata.r',
      retention: { maxMessages: 1000 },
      readiness: { catchUpTimeout: '20s' },
    };
    const start = () => startAdminNode({ origin: origin.url, dir, config: { fleet } });
    let node = await start();
    try {
      assert.ok(await eventually(async () => (await node.call('GET', '/readyz')).status === 200, 15_000));
      await node.close({ keepDir: true });
      const nc = await connect({ servers: nats.url });
      try {
        const js = jetstream(nc);
        const sent = [];
        for (let i = 1; i <= 1101; i++) {
          const command = {
            urls: [`http://example.test/k/${i}`],
            prefixes: [],
            tags: [],
            all: false,
            soft: false,
          };
          const purge = { v: 1, node: 'elsewhere', sequence: i, command, at: Date.now() };
          sent.push(js.publish('strata.r', JSON.stringify(purge), { msgID: `elsewhere:${i}` }));
        }
        await Promise.all(sent);
      } finally {
        await nc.close();
      }
      node = await start();
      let last = '';
      const ready = await eventually(async () => {
        const readyz = await node.call('GET', '/readyz');
        last = `${readyz.status} ${readyz.text}`;
        return readyz.status === 200;
      }, 15_000);
      if (!ready)
        last += ` /stats fleet: ${JSON.stringify(JSON.parse((await node.call('GET', '/stats')).text).fleet)}`;
      assert.ok(ready, `not ready after the restart: ${last}`);
      const answer = JSON.parse((await node.call('GET', '/readyz')).text);
      assert.match(
        String(answer.warning ?? answer.reason ?? JSON.stringify(answer)),
        /left the purge stream/,
      );
    } finally {
      await node.close();
      rmSync(dir, { recursive: true, force: true });
      await origin.close();
      await nats.close();
    }
  });
});

describe('a bus that refuses the node', { skip }, () => {
  /**
   * Node `w` on a nats-server of its own (`token`: the one the server requires, `sends`: the one
   * the node gives), with `stream` made before it starts: its /readyz answer once 200 (and, with `warned`, carrying a warning) and
   * its /stats. Everything it started is stopped before it returns.
   */
  async function refusedAnswer(setup: {
    token?: string;
    sends?: string;
    stream?: { name: string; subjects: string[] };
    fleet: Record<string, unknown>;
    warned?: boolean;
  }): Promise<{ answer: Record<string, unknown>; stats: { fleet: { lastError: string } } }> {
    const nats = await startNats(setup.token === undefined ? {} : { token: setup.token });
    const origin = await startOrigin({});
    const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-'));
    if (setup.stream) {
      const nc = await connect({ servers: nats.url });
      await (await jetstreamManager(nc)).streams.add(setup.stream);
      await nc.close();
    }
    const node = await startAdminNode({
      origin: origin.url,
      dir,
      config: {
        fleet: {
          nats: { servers: [nats.url], ...(setup.sends === undefined ? {} : { token: setup.sends }) },
          node: 'w',
          readiness: { catchUpTimeout: '1s' },
          ...setup.fleet,
        },
      },
    });
    try {
      let answer: Record<string, unknown> = {};
      assert.ok(
        await eventually(async () => {
          const readyz = await node.call('GET', '/readyz');
          answer = JSON.parse(readyz.text);
          return readyz.status === 200 && (!setup.warned || answer.warning !== undefined);
        }, 15_000),
      );
      const stats = JSON.parse((await node.call('GET', '/stats')).text);
      return { answer, stats };
    } finally {
      await node.close();
      rmSync(dir, { recursive: true, force: true });
      await origin.close();
      await nats.close();
    }
  }

  it("says so when the stream exists without the node's subject, instead of reporting ready and receiving nothing", async () => {
    const { answer, stats } = await refusedAnswer({
      stream: { name: 'STRATA_PURGES', subjects: ['strata.purges'] },
      fleet: { subject: 'strata.other' },
    });
    const said = String(answer.warning);
    assert.match(said, /strata\.other/, said);
    assert.match(said, /strata\.purges/, 'the subjects the stream holds');
    assert.match(stats.fleet.lastError, /strata\.other/);
  });

  it('says the stream cannot be made, and why, when the bus is reached but another stream holds the subject', async () => {
    const { answer, stats } = await refusedAnswer({
      stream: { name: 'TAKEN', subjects: ['strata.purges'] },
      fleet: { stream: 'MINE' },
      warned: true,
    });
    const said = String(answer.warning);
    assert.doesNotMatch(said, /unreachable/, 'the bus was reached');
    assert.match(said, /MINE/);
    assert.match(said, /subjects overlap/i, 'the server\'s reason, not "stream not found"');
    assert.match(stats.fleet.lastError, /subjects overlap/i);
  });

  it('says why in the readiness warning once the node reports ready without it', async () => {
    const { answer } = await refusedAnswer({
      token: 'the-right-token-0123456789',
      sends: 'a-wrong-token',
      fleet: {},
    });
    const said = String(answer.warning ?? answer.reason);
    assert.match(said, /purge bus unreachable since start/);
    assert.match(said, /authorization/i, 'the cause, not only the symptom');
  });
});
