/**
 * memory: what each proxy holds at start and after `--objects` (default 100,000) stored misses
 * of 1 KiB objects, each a new key, from /proc/PID/smaps_rollup: resident memory, anonymous
 * (heaps and buffers: what must stay bounded) and file-backed (the binary's pages, and for
 * Strata LMDB's map, which the kernel reclaims like any file cache). Read 2 s after the target
 * answered, and 2 s after the last miss. `strata node.heap small` runs Strata with that setting
 * (V8's young generation and heap growth bounded: src/heap.ts); `strata V8 sizing` runs it with V8's
 * own sizing, the flags of src/heap.ts's default profile left to V8.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad } from '../lib/generator.ts';
import { originCounts } from '../lib/http.ts';
import { cpuMs, descendantsOf, memoryRollup } from '../lib/proc-stats.ts';
import { PINNING } from '../lib/processes.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, type Scenario } from '../lib/scenario.ts';
import type { TargetKind, TargetOptions } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';

const KINDS: { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[] = [
  { kind: 'strata', label: 'strata' },
  { kind: 'strata', label: 'strata node.heap small', options: { strataConfig: { node: { heap: 'small' } } } },
  // V8's own sizing (src/heap.ts leaves a family of flags given to node alone): the reference for the default profile.
  {
    kind: 'strata',
    label: 'strata V8 sizing',
    options: { nodeFlags: ['--semi-space-growth-factor=2', '--heap-growing-percent=0'] },
  },
  { kind: 'nginx', label: 'nginx' },
  { kind: 'varnish', label: 'varnish' },
];

const MIB = 1024;
/** Misses are sent in slices of this many seconds until the origin has seen enough. */
const SLICE_S = 5;

async function runMemory(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport('memory', `memory at start and after ${ctx.objects} stored misses`, [
    col('target', 'target'),
    col('startRss', 'start RSS MiB', 'mib'),
    col('startAnon', 'start anon MiB', 'mib'),
    col('startFile', 'start file MiB', 'mib'),
    col('objects', 'stored misses', 'int'),
    col('seconds', 'fill s', 'seconds'),
    col('cpu', 'CPU µs/miss', 'us'),
    col('rss', 'after RSS MiB', 'mib'),
    col('anon', 'after anon MiB', 'mib'),
    col('file', 'after file MiB', 'mib'),
  ]);
  report.notes.push(
    `${PINNING.label}; 1 KiB objects, 50 connections of unique-key misses (wrk) until the origin ` +
      "counted them; anon = Anonymous of smaps_rollup (heaps, buffers), file = resident file pages (the binary, LMDB's map); " +
      "strata node.heap small: the config setting (src/heap.ts); strata V8 sizing: without the default profile's caps (V8's own young generation and old-generation growth); Varnish runs with -s malloc (memory storage by design)",
  );
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
    };
    await eachTarget(report, KINDS, base, async (target, label) => {
      await sleep(2000);
      const start = memoryRollup(target.proc.pid);
      const before = (await originCounts(origin.url)).total;
      const tree = (): number[] => [target.proc.pid, ...descendantsOf(target.proc.pid)];
      const cpuBefore = cpuMs(tree());
      const startedAt = performance.now();
      ctx.log(`memory: ${label} ${ctx.objects} misses`);
      let stored = 0;
      // Bounded: at most one slice per 100 objects (a target that stores nothing ends the loop).
      for (let slice = 0; stored < ctx.objects && slice < ctx.objects / 100 + 1; slice++) {
        const load = await runLoad({
          url: `${target.url}/miss/1k`,
          connections: 50,
          durationS: SLICE_S,
          unique: true,
          cores: PINNING.generator,
          runId: `${ctx.runId}-${label.replace(/\W+/g, '')}-${slice}`,
        });
        stored = (await originCounts(origin.url)).total - before;
        if (load.requests === 0) break;
      }
      const seconds = (performance.now() - startedAt) / 1000;
      const cpu = cpuMs(tree()) - cpuBefore;
      await sleep(2000);
      const after = memoryRollup(target.proc.pid);
      report.rows.push({
        target: label,
        startRss: start.rssKiB / MIB,
        startAnon: start.anonKiB / MIB,
        startFile: start.fileKiB / MIB,
        objects: stored,
        seconds,
        cpu: stored > 0 ? (cpu * 1000) / stored : null,
        rss: after.rssKiB / MIB,
        anon: after.anonKiB / MIB,
        file: after.fileKiB / MIB,
      });
    });
  });
  return report;
}

export const memoryScenario: Scenario = {
  name: 'memory',
  title: 'memory at start and after N stored misses (--objects, default 100,000)',
  budgetS: (ctx) => KINDS.length * (60 + Math.ceil(ctx.objects / 300)),
  run: runMemory,
};
