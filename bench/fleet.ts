/**
 * The fleet under load, as processes on loopback: 4 edges × 2 shields × 1 origin (real
 * `strata serve` each, workers 1), the long variant of test/integration/fleet.test.ts.
 * Prints one JSON object of figures; bounded by --duration (the purge race) plus setup.
 *
 *   node bench/fleet.ts [--duration 20] [--purges 20] [--delay 250] [--concurrency 16] [--no-fence]
 *                       [--workers 1]
 *
 * --delay: how much later than the edges the shields receive each purge (a relay in front of
 * their admin API); --no-fence: edges send no purge fence (tiers.fenceWindow 0), for comparison.
 */
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { FLEET_HOST, FLEET_SECRET, type Fleet, startFleet } from '../test/helpers/fleet.ts';
import { delayingRelay, purgeRace, versionedRoute } from '../test/helpers/fleet-load.ts';
import { request } from '../test/helpers/http.ts';
import { startOrigin, type TestOrigin } from '../test/helpers/origin.ts';
import { percentile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    purges: { type: 'string', default: '20' },
    delay: { type: 'string', default: '250' },
    concurrency: { type: 'string', default: '16' },
    'no-fence': { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
  },
});
const durationS = Math.min(120, Math.max(1, Number(values.duration)));
const purgesPerSecond = Math.min(200, Math.max(1, Number(values.purges)));
const delayMs = Math.min(10_000, Math.max(0, Number(values.delay)));
const concurrency = Math.min(256, Math.max(1, Number(values.concurrency)));
const workers = Math.min(8, Math.max(1, Number(values.workers)));
const HOST = { host: FLEET_HOST };
const round = (value: number | null) => (value === null ? null : Math.round(value * 10) / 10);

async function counters(fleet: Fleet, name: string): Promise<number[]> {
  return Promise.all(fleet.shields.map((shield) => shield.counter(name)));
}

async function herd(fleet: Fleet, origin: TestOrigin, versions: Map<string, number>) {
  const path = '/bench/herd/one-cold-key.json';
  origin.route(path, versionedRoute(versions, 150));
  const started = performance.now();
  const responses = await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      request(`${fleet.edges[i % fleet.edges.length]!.url}${path}`, { headers: HOST }).catch(() => undefined),
    ),
  );
  return {
    requests: 1000,
    ok: responses.filter((r) => r?.status === 200).length,
    originRequests: origin.count(path),
    ms: Math.round(performance.now() - started),
  };
}

async function coldKeys(fleet: Fleet, origin: TestOrigin, versions: Map<string, number>) {
  const paths = Array.from({ length: 100 }, (_, i) => `/bench/cold/${i}.json`);
  for (const path of paths) origin.route(path, versionedRoute(versions, 20));
  const before = origin.count();
  const responses = await Promise.all(
    paths.flatMap((path) => fleet.edges.map((edge) => request(`${edge.url}${path}`, { headers: HOST }))),
  );
  return {
    keys: 100,
    requests: responses.length,
    ok: responses.filter((r) => r.status === 200).length,
    originRequests: origin.count() - before,
  };
}

async function race(fleet: Fleet, origin: TestOrigin, versions: Map<string, number>) {
  const paths = Array.from({ length: 16 }, (_, i) => `/bench/hot/${i}.json`);
  for (const path of paths) origin.route(path, versionedRoute(versions));
  await Promise.all(
    paths.flatMap((path) => fleet.edges.map((edge) => request(`${edge.url}${path}`, { headers: HOST }))),
  );
  const bypasses = await counters(fleet, 'strata_tier_fence_bypasses_total');
  const originBefore = origin.count();
  const result = await purgeRace({
    edges: fleet.edges,
    versions,
    paths,
    durationMs: durationS * 1000,
    purgesPerSecond,
    concurrency,
  });
  const bypassesAfter = await counters(fleet, 'strata_tier_fence_bypasses_total');
  return {
    seconds: durationS,
    purgesPerSecondAsked: purgesPerSecond,
    purges: result.purges,
    shieldDelayMs: delayMs,
    requests: result.requests,
    errors: result.errors,
    stale: result.stale,
    staleExamples: result.staleExamples,
    ackMsP50: round(percentile(result.ackMs, 50)),
    ackMsP99: round(percentile(result.ackMs, 99)),
    originRequests: origin.count() - originBefore,
    fenceBypasses: bypassesAfter.reduce((sum, n, i) => sum + n - bypasses[i]!, 0),
  };
}

async function killShield(fleet: Fleet, origin: TestOrigin, versions: Map<string, number>) {
  const paths = Array.from({ length: 2000 }, (_, i) => `/bench/failover/${i}.json`);
  for (const path of paths) origin.route(path, versionedRoute(versions, 5));
  const before = origin.count();
  let next = 0;
  let killedAt = Number.POSITIVE_INFINITY;
  const failures: number[] = [];
  const latencies: number[] = [];
  const client = async () => {
    for (let i = 0; i < paths.length && next < paths.length; i++) {
      const path = paths[next++]!;
      const sent = performance.now();
      const response = await request(`${fleet.edges[next % fleet.edges.length]!.url}${path}`, {
        headers: HOST,
      }).catch(() => undefined);
      if (sent > killedAt) latencies.push(performance.now() - sent);
      if (response?.status !== 200) failures.push(sent - killedAt);
    }
  };
  const load = Promise.all(Array.from({ length: concurrency }, client));
  while (next < 300) await new Promise((resolve) => setTimeout(resolve, 5));
  killedAt = performance.now();
  fleet.shields[0]!.child.kill('SIGKILL');
  await load;
  return {
    requests: paths.length,
    concurrency,
    errors: failures.length,
    errorsMsAfterKill: failures.map((ms) => Math.round(ms)),
    msP50AfterKill: round(percentile(latencies, 50)),
    msP99AfterKill: round(percentile(latencies, 99)),
    originRequests: origin.count() - before,
  };
}

async function main() {
  const origin = await startOrigin();
  const versions = new Map<string, number>();
  const relays: Server[] = [];
  const fleet = await startFleet({
    edges: 4,
    shields: 2,
    origin: origin.url,
    edgesForwardPurges: true,
    edge: { workers, ...(values['no-fence'] ? { tiers: { secret: FLEET_SECRET, fenceWindow: 0 } } : {}) },
    shield: { workers },
    purgePeer: async (admin) => {
      if (delayMs === 0) return admin;
      const relay = await delayingRelay(admin, delayMs);
      relays.push(relay.server);
      return relay.url;
    },
  });
  try {
    const figures = {
      fence: !values['no-fence'],
      workersPerNode: workers,
      herd: await herd(fleet, origin, versions),
      coldKeys: await coldKeys(fleet, origin, versions),
      purgeRace: await race(fleet, origin, versions),
      shieldKilled: await killShield(fleet, origin, versions),
    };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await fleet.close();
    for (const relay of relays) relay.closeAllConnections();
    await Promise.all(relays.map((relay) => new Promise((resolve) => relay.close(resolve))));
    await origin.close();
  }
}

await main();
