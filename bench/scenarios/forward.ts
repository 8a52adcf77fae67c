/**
 * miss and pass: every request goes to the origin. `miss` asks a new cacheable key each time
 * (the proxy stores every response), `pass` asks a no-store path. The reference is the origin
 * served directly (a second origin process on the target core), so the gap is what the proxy adds.
 */
import { GENERATOR } from '../lib/generator.ts';
import { PINNING } from '../lib/processes.ts';
import { addRatio, col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  COUNTED_WARMUP_MAX_S,
  eachTarget,
  measure,
  measuredCells,
  type Scenario,
  warmByCount,
} from '../lib/scenario.ts';
import type { TargetKind } from '../lib/targets.ts';
import { LOAD_COLUMNS } from './hit.ts';
import { withOrigin } from './origin.ts';

const KINDS: { kind: TargetKind; label: string }[] = [
  { kind: 'origin', label: 'origin direct' },
  { kind: 'forwarder', label: 'undici forward' },
  { kind: 'strata', label: 'strata' },
  { kind: 'nginx', label: 'nginx' },
  { kind: 'varnish', label: 'varnish' },
  { kind: 'trafficserver', label: 'trafficserver' },
];

interface ForwardOptions {
  name: string;
  title: string;
  path: string;
  unique: boolean;
}

async function runForward(ctx: BenchContext, options: ForwardOptions): Promise<ScenarioReport> {
  const report = emptyReport(options.name, options.title, [
    col('target', 'target'),
    col('conns', 'conns', 'int'),
    ...LOAD_COLUMNS,
    col('addedP50', '+p50 ms', 'ms'),
    col('xOrigin', '× origin', 'ratio'),
    col('xNginx', '× nginx', 'ratio'),
    col('cpuXForward', 'CPU × forward', 'ratio'),
    col('cpuXNginx', 'CPU × nginx', 'ratio'),
    col('originRequests', 'origin reqs', 'int'),
  ]);
  report.notes.push(
    `${GENERATOR}, 1 thread; ${PINNING.label}; the origin shares the generator core; ` +
      'CPU µs/req counts the proxy only; +p50 is the p50 added to the origin served directly',
  );
  const connections = ctx.connections[0] ?? 50;
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
    };
    await eachTarget(report, KINDS, base, async (target, label) => {
      const runId = `${ctx.runId}-${label.replace(/\W+/g, '')}`;
      // A number of requests, not seconds: a proxy's miss path is long code that V8 compiles as it
      // runs, and at 2,000 misses a second a few seconds leave it half compiled (measured:
      // docs/performance.md, "The miss path's warm-up").
      const warm = await warmByCount(
        {
          url: `${target.url}${options.path}`,
          connections,
          unique: options.unique,
          cores: PINNING.generator,
          runId: `${runId}-warm`,
        },
        ctx.warmupRequests,
      );
      ctx.log(
        `${options.name}: ${label} warmed with ${warm.requests} requests in ${warm.seconds.toFixed(1)} s`,
      );
      ctx.log(`${options.name}: ${label} ${connections} connections, ${ctx.durationS} s`);
      const m = await measure(target, {
        path: options.path,
        connections,
        durationS: ctx.durationS,
        unique: options.unique,
        generatorCores: PINNING.generator,
        runId,
        originUrl: origin.url,
        originPid: origin.proc.pid,
      });
      report.rows.push({
        ...measuredCells(label, connections, m),
        originRequests: target.kind === 'origin' || target.kind === 'forwarder' ? null : m.originRequests,
      });
    });
  });
  const direct = report.rows.find((r) => r.target === 'origin direct')?.p50;
  for (const row of report.rows) {
    row.addedP50 = typeof direct === 'number' && typeof row.p50 === 'number' ? row.p50 - direct : null;
  }
  addRatio(report.rows, { ref: 'origin direct', key: 'rps', as: 'xOrigin' });
  addRatio(report.rows, { ref: 'nginx', key: 'rps', as: 'xNginx' });
  addRatio(report.rows, { ref: 'undici forward', key: 'cpu', as: 'cpuXForward' });
  addRatio(report.rows, { ref: 'nginx', key: 'cpu', as: 'cpuXNginx' });
  return report;
}

function forwardScenario(options: ForwardOptions): Scenario {
  return {
    name: options.name,
    title: options.title,
    budgetS: (ctx) => KINDS.length * (40 + ctx.durationS + COUNTED_WARMUP_MAX_S),
    run: (ctx) => runForward(ctx, options),
  };
}

export const forwardScenarios: Scenario[] = [
  forwardScenario({
    name: 'miss',
    title: 'every request a new cacheable 1k key (fetched, stored, delivered)',
    path: '/miss/1k',
    unique: true,
  }),
  forwardScenario({
    name: 'pass',
    title: 'every request a no-store 1k response (forwarded, not stored)',
    path: '/pass/1k',
    unique: false,
  }),
];
