/**
 * The fleet bus, measured (node bench/fleet-bus.ts [--nodes 5] [--purges 200] [--replay 10000]):
 * a real nats-server with JetStream on loopback and N edge nodes (in this one process, each
 * with its own LMDB cache and admin listener) on the bus.
 *
 * 1. Spread: purges POSTed one at a time to the nodes' admin APIs in turn; for each, the time
 *    from the POST to the purge applied (committed) on every other node. Prints p50/p99/max.
 * 2. Replay: one node stops; `--replay` purges are published to the stream (as another node
 *    would); the node starts again; the time until /readyz answers 200 with all of them
 *    applied. 2,000 of the purged URLs are stored in its cache first.
 *
 * Bounded: every wait has a deadline. Needs nats-server (apt-get install nats-server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { createEdgeNode, type EdgeNode, validateConfig } from '../src/index.ts';
import { natsMissing, startNats } from '../test/helpers/nats.ts';
import { startOrigin } from '../test/helpers/origin.ts';
import { percentile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5' },
    purges: { type: 'string', default: '200' },
    replay: { type: 'string', default: '10000' },
  },
});
const NODES = Number(values.nodes);
const PURGES = Number(values.purges);
const REPLAY = Number(values.replay);
const STORED = Math.min(2000, REPLAY);
const TOKEN = 'bench-admin-token-0123456789';

const missing = natsMissing();
if (missing) {
  process.stdout.write(`fleet-bus: skipped: ${missing}\n`);
  process.exit(0);
}

const nats = await startNats();
const origin = await startOrigin({});
origin.route('/', (_req, res) => {
  res.writeHead(200, { 'cache-control': 'max-age=600' });
  res.end('x');
});
const dirs: string[] = [];

async function startBusNode(name: string, dir: string): Promise<EdgeNode> {
  const result = validateConfig({
    listeners: [{ listen: '127.0.0.1:0' }],
    origins: [{ name: 'origin', url: origin.url }],
    sites: [{ name: 'default', hosts: ['*'], origins: ['origin'] }],
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    logging: { level: 'silent' },
    cache: { dir },
    fleet: { nats: { servers: [nats.url] }, node: name, readiness: { catchUpTimeout: '60s' } },
  });
  if ('problems' in result) throw new Error(JSON.stringify(result.problems));
  return createEdgeNode({ config: result.config, logger: pino({ level: 'silent' }) });
}

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

const applied = (node: EdgeNode) => node.bus?.stats().consumed.applied ?? 0;
const ready = async (node: EdgeNode) =>
  (await fetch(`http://${node.adminAddress}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } }))
    .status === 200;

const nodes: EdgeNode[] = [];
try {
  for (let i = 0; i < NODES; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'strata-bench-fleet-'));
    dirs.push(dir);
    nodes.push(await startBusNode(`n${i}`, dir));
  }
  for (const node of nodes)
    if (!(await until(() => ready(node), 20_000))) throw new Error('a node never got ready');
  // 1. Spread.
  const spread: number[] = [];
  for (let p = 0; p < PURGES; p++) {
    const at = nodes[p % NODES]!;
    const others = nodes.filter((n) => n !== at);
    const before = others.map(applied);
    const t0 = performance.now();
    const response = await fetch(`http://${at.adminAddress}/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [`http://example.test/spread/${p}/${'x'.repeat(100)}`] }),
    });
    await response.text();
    if (!(await until(() => others.every((n, i) => applied(n) > before[i]!), 10_000)))
      throw new Error(`purge ${p} not applied everywhere within 10 s`);
    spread.push(performance.now() - t0);
  }
  const ms = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  process.stdout.write(
    `spread: ${NODES} nodes, ${PURGES} purges one at a time, POST → applied on every other node: ` +
      `p50 ${ms(percentile(spread, 50))} ms, p99 ${ms(percentile(spread, 99))} ms, max ${ms(percentile(spread, 100))} ms\n`,
  );
  // 2. Replay.
  const last = nodes.pop()!;
  const dir = dirs.at(-1)!;
  // Stored under the node's own address (fetch sends it as Host): the purges name it.
  const address = last.addresses[0]!;
  for (let i = 0; i < STORED; i++) {
    const answer = await fetch(`http://${address}/r/${i}`);
    await answer.arrayBuffer();
  }
  await last.idle();
  const storedBefore = last.store.usage().entries;
  await last.close();
  const nc = await connect({ servers: nats.url });
  const js = jetstream(nc);
  const tPublish = performance.now();
  for (let from = 0; from < REPLAY; from += 500) {
    const batch = [];
    for (let i = from; i < Math.min(REPLAY, from + 500); i++) {
      const purge = {
        v: 1,
        node: 'bench-publisher',
        sequence: i + 1,
        command: { urls: [`http://${address}/r/${i}`], prefixes: [], tags: [], all: false, soft: false },
        at: Date.now(),
      };
      batch.push(js.publish('strata.purges', JSON.stringify(purge), { msgID: `bench-publisher:${i + 1}` }));
    }
    await Promise.all(batch);
  }
  const publishMs = performance.now() - tPublish;
  await nc.close();
  const t0 = performance.now();
  const back = await startBusNode(`n${NODES - 1}`, dir);
  nodes.push(back);
  const ok = await until(async () => (await ready(back)) && applied(back) >= REPLAY, 120_000);
  const replayMs = performance.now() - t0;
  process.stdout.write(
    `replay: ${REPLAY} purges published in ${publishMs.toFixed(0)} ms while one node was down (${storedBefore} entries stored, ${STORED} of them purged); ` +
      `restart → ready with all applied: ${ok ? `${replayMs.toFixed(0)} ms` : 'NOT within 120 s'}; ` +
      `entries left ${back.store.usage().entries}; catch-up ${JSON.stringify(back.bus?.stats().catchUp)}\n`,
  );
} finally {
  for (const node of nodes) await node.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await origin.close();
  await nats.close();
}
