/**
 * herd: N clients ask one cold key at once while the origin takes 200 ms to answer. A cache that
 * collapses sends the origin one request and answers everyone shortly after 200 ms. Each target
 * meets two herds on two keys: the first right after it started (its `1st p50`: for Strata, code
 * V8 has not compiled yet), then the measured one.
 */

import { availableParallelism } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../lib/generator.ts';
import { originCounts } from '../lib/http.ts';
import { CpuFollower, cpuMs, machineTimes, TreeSampler } from '../lib/proc-stats.ts';
import { capture, PINNING } from '../lib/processes.ts';
import { waitQuiet } from '../lib/quiet.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, type Scenario } from '../lib/scenario.ts';
import type { TargetKind, TargetOptions } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';

const ORIGIN_DELAY_MS = 200;

const KINDS: { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[] = [
  { kind: 'origin', label: 'origin direct', options: { delayMs: ORIGIN_DELAY_MS } },
  { kind: 'strata', label: 'strata' },
  // Two workers on both cores: the cold key must still reach the origin once per node.
  { kind: 'strata', label: 'strata 2 workers', options: { workers: 2, cores: null } },
  { kind: 'nginx', label: 'nginx lock on', options: { cacheLock: true } },
  { kind: 'nginx', label: 'nginx lock off', options: { cacheLock: false } },
  { kind: 'varnish', label: 'varnish' },
  { kind: 'trafficserver', label: 'trafficserver' },
];

interface HerdSummary {
  n?: number;
  connected?: number;
  statuses?: Record<string, number>;
  errors?: number;
  p50Ms?: number | null;
  p99Ms?: number | null;
  maxMs?: number | null;
  error?: string;
}

async function herd(
  port: number,
  target: string,
  n: number,
  onSpawn: (pid: number) => void,
): Promise<HerdSummary> {
  const result = await capture({
    onSpawn,
    name: 'herd-client',
    command: process.execPath,
    args: ['bench/herd-client.ts', '--port', String(port), '--path', target, '--n', String(n)],
    cores: PINNING.generator,
    cwd: repoRoot(),
    timeoutMs: 40000,
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as HerdSummary;
  } catch {
    return { error: `herd client gave no summary (exit ${result.code}): ${result.stderr.slice(0, 500)}` };
  }
}

/**
 * The share of both cores that went to neither the target, the herd client nor the origin while
 * the herd ran (the client's start-up included): other processes and hypervisor steal.
 */
function startBusy(targetPid: number, originPid: number): { otherShare(clientMs: number): number } {
  const target = new TreeSampler(targetPid);
  const originBefore = cpuMs([originPid]);
  const machineBefore = machineTimes();
  const startedAt = performance.now();
  return {
    otherShare(clientMs) {
      const targetMs = target.stop().cpuMs;
      const machine = machineTimes();
      const ownMs = targetMs + clientMs + cpuMs([originPid]) - originBefore;
      const wallMs = (performance.now() - startedAt) * availableParallelism();
      const otherMs = machine.busyMs - machineBefore.busyMs - ownMs + machine.stealMs - machineBefore.stealMs;
      return wallMs > 0 ? Math.max(0, otherMs / wallMs) : Number.NaN;
    },
  };
}

async function runHerd(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport(
    'herd',
    `${ctx.herdSize} concurrent requests for one cold key, origin takes 200 ms`,
    [
      col('target', 'target'),
      col('originRequests', 'origin reqs', 'int'),
      col('ok', '200s', 'int'),
      col('errors', 'errors', 'int'),
      col('p50', 'p50 ms', 'ms'),
      col('p99', 'p99 ms', 'ms'),
      col('max', 'max ms', 'ms'),
      col('overOrigin', 'p50 − 200 ms', 'ms'),
      col('firstP50', '1st p50 ms', 'ms'),
      col('other', 'other load', 'percent'),
    ],
  );
  report.notes.push(
    `raw-socket client: ${ctx.herdSize} connections opened first, then one request on each at once; ${PINNING.label}; ` +
      'the figures are of the second herd a target meets (on another key); 1st p50: its first herd, right after it started',
  );
  await withOrigin(ctx, { delayMs: ORIGIN_DELAY_MS }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
    };
    await eachTarget(report, KINDS, base, async (target, label) => {
      const key = `/slow/herd-${path.basename(label).replace(/\W+/g, '-')}-${ctx.runId}/1k`;
      await waitQuiet();
      ctx.log(`herd: ${label} (first herd)`);
      const first = await herd(target.port, key.replace('/slow/', '/slow/first-'), ctx.herdSize, () => {});
      await waitQuiet();
      ctx.log(`herd: ${label}`);
      const before = await originCounts(origin.url);
      const busy = startBusy(target.proc.pid, origin.proc.pid);
      const client = new CpuFollower();
      const summary = await herd(target.port, key, ctx.herdSize, (pid) => client.follow(pid));
      const other = busy.otherShare(client.stop());
      const after = await originCounts(origin.url);
      if (summary.error !== undefined) report.notes.push(`${label}: ${summary.error}`);
      const p50 = summary.p50Ms ?? null;
      report.rows.push({
        target: label,
        originRequests: target.kind === 'origin' ? null : (after.paths[key] ?? 0) - (before.paths[key] ?? 0),
        ok: summary.statuses?.['200'] ?? 0,
        errors: summary.errors ?? null,
        p50,
        p99: summary.p99Ms ?? null,
        max: summary.maxMs ?? null,
        overOrigin: p50 === null ? null : p50 - ORIGIN_DELAY_MS,
        firstP50: first.p50Ms ?? null,
        other,
      });
    });
  });
  return report;
}

export const herdScenario: Scenario = {
  name: 'herd',
  title: 'thundering herd on a cold key',
  budgetS: (ctx) => KINDS.length * (90 + 2 * ctx.waitQuietS),
  run: runHerd,
};
