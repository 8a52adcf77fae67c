/**
 * origins: where a site's misses go when it has three origins at 10, 50 and 200 ms, with
 * Strata's default latency selection against round robin in the same run. Three phases:
 *
 * - steady: all three answer; load well under the near origin's capacity (maxConnections 16,
 *   8 connections of load). Latency selection should keep ≥ 99% on the 10 ms origin.
 * - refusing: the near origin's port is closed. No GET may fail; almost nothing goes there.
 * - black-hole: the near origin accepts connections and never answers. Traffic leaves it as its
 *   oldest request waits longer than the others answer; the requests caught there wait for
 *   responseTimeout (set to 2 s here), which shows in the p99 and the error count.
 * - 503: the near origin answers 503 to everything. Origin requests stay ≤ 1.2 × client + 10/s.
 *
 * Origins are bench origin processes (`/slow/` paths wait their delay); every request is a new
 * key, so every request is a miss that reaches an origin.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { GENERATOR, runLoad } from '../lib/generator.ts';
import { originCounts } from '../lib/http.ts';
import { freePort, PINNING } from '../lib/processes.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, type Scenario } from '../lib/scenario.ts';
import type { Target, TargetKind } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';

const CONNECTIONS = 8;
const MAX_CONNECTIONS = 16;
const PHASES = ['steady', 'refusing', 'black-hole', '503'] as const;
type Phase = (typeof PHASES)[number];

const SELECTIONS: { label: string; selection: string }[] = [
  { label: 'strata latency', selection: 'latency' },
  { label: 'strata round-robin', selection: 'round-robin' },
];

/** A server that accepts connections and never answers, counting the requests it was sent. */
async function blackHole(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (data: Buffer) => {
      count += (data.toString('latin1').match(/(?:^|\r\n)(?:GET|HEAD) \//g) ?? []).length;
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    count: () => count,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A server answering 503 to everything, counting what it got. */
async function unavailableOrigin(): Promise<{
  port: number;
  count: () => number;
  close: () => Promise<void>;
}> {
  let count = 0;
  const server = http.createServer((_req, res) => {
    count++;
    res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '12' });
    res.end('unavailable\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    count: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function strataConfig(selection: string, ports: { near: number; mid: number; far: number }) {
  const origin = (name: string, port: number) => ({
    name,
    url: `http://127.0.0.1:${port}`,
    connections: MAX_CONNECTIONS,
    maxConnections: MAX_CONNECTIONS,
    responseTimeout: '2s',
  });
  return {
    origins: [origin('far', ports.far), origin('mid', ports.mid), origin('near', ports.near)],
    sites: [{ name: 'three', hosts: ['*'], origins: ['far', 'mid', 'near'], selection }],
  };
}

async function runOrigins(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport(
    'origins',
    'three origins at 10/50/200 ms: latency selection against round robin',
    [
      col('phase', 'phase'),
      col('target', 'selection'),
      col('requests', 'client reqs', 'int'),
      col('rps', 'req/s', 'int'),
      col('p50', 'p50 ms', 'ms'),
      col('p99', 'p99 ms', 'ms'),
      col('errors', 'errors', 'int'),
      col('near', '10 ms'),
      col('mid', '50 ms'),
      col('far', '200 ms'),
      col('perClient', 'origin reqs / client req', 'ratio'),
    ],
  );
  report.notes.push(
    `${GENERATOR}, ${CONNECTIONS} connections, unique keys under /slow/ (every request a miss); ` +
      `maxConnections ${MAX_CONNECTIONS} per origin; ${PINNING.label}`,
  );
  await withOrigin(ctx, { delayMs: 10 }, async (near) => {
    await withOrigin(ctx, { delayMs: 50 }, async (mid) => {
      await withOrigin(ctx, { delayMs: 200 }, async (far) => {
        for (const phase of PHASES) {
          const refused = await freePort();
          const failing =
            phase === '503'
              ? await unavailableOrigin()
              : phase === 'black-hole'
                ? await blackHole()
                : undefined;
          const nearPort = phase === 'refusing' ? refused : (failing?.port ?? near.port);
          try {
            const kinds = SELECTIONS.map(({ label, selection }) => ({
              kind: 'strata' as TargetKind,
              label,
              options: {
                strataConfig: strataConfig(selection, { near: nearPort, mid: mid.port, far: far.port }),
              },
            }));
            const base = {
              workDir: ctx.workDir,
              profileDir: ctx.profileDir,
              cores: PINNING.target,
              workers: 1,
              originPort: near.port,
            };
            await eachTarget(report, kinds, base, async (target, label) => {
              await measurePhase(ctx, report, phase, target, label, { near, mid, far }, failing);
            });
          } finally {
            await failing?.close();
          }
        }
      });
    });
  });
  return report;
}

async function measurePhase(
  ctx: BenchContext,
  report: ScenarioReport,
  phase: Phase,
  target: Target,
  label: string,
  origins: { near: Target; mid: Target; far: Target },
  failing: { count: () => number } | undefined,
): Promise<void> {
  ctx.log(`origins: ${phase}: ${label}`);
  const counts = async () => ({
    near:
      phase === 'refusing'
        ? 0
        : failing !== undefined
          ? failing.count()
          : (await originCounts(origins.near.url)).total,
    mid: (await originCounts(origins.mid.url)).total,
    far: (await originCounts(origins.far.url)).total,
  });
  const before = await counts();
  const result = await runLoad({
    url: `${target.url}/slow/origins/1k`,
    connections: CONNECTIONS,
    durationS: ctx.durationS,
    unique: true,
    cores: PINNING.generator,
    runId: `${ctx.runId}-${phase}-${label.replace(/\W+/g, '')}`,
  });
  const after = await counts();
  const near = after.near - before.near;
  const mid = after.mid - before.mid;
  const far = after.far - before.far;
  const total = near + mid + far;
  const share = (n: number) => (total === 0 ? null : `${((100 * n) / total).toFixed(1)}%`);
  report.rows.push({
    phase,
    target: label,
    requests: result.requests,
    rps: result.rps,
    p50: result.p50Ms,
    p99: result.p99Ms,
    errors: result.errors,
    near: share(near),
    mid: share(mid),
    far: share(far),
    perClient: result.requests === 0 ? null : total / result.requests,
  });
}

export const originsScenario: Scenario = {
  name: 'origins',
  title: 'origin selection: latency tiers against round robin',
  budgetS: (ctx) => PHASES.length * SELECTIONS.length * (ctx.durationS + 40),
  run: runOrigins,
};
