/** The contract between run.ts and a scenario, and the measuring step most scenarios share. */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LoadOptions, type LoadResult, runLoad } from './generator.ts';
import { cacheOutcome, originCounts, request } from './http.ts';
import { CpuFollower, cpuMs, machineTimes, TreeSampler } from './proc-stats.ts';
import { logTail } from './processes.ts';
import { waitQuiet } from './quiet.ts';
import type { ScenarioReport } from './report.ts';
import { startTarget, type Target, type TargetKind, type TargetOptions, unavailable } from './targets.ts';

export interface BenchContext {
  /** Seconds of measured load per run. */
  durationS: number;
  /** Keep-alive connection counts the hit scenarios measure at. */
  connections: number[];
  /** Rounds of the hit scenarios; each figure is the median over rounds (targets alternate). */
  rounds: number;
  /** Longest wait for a quiet machine before each measured run (0: never wait). */
  waitQuietS: number;
  /** Concurrent requests of the herd scenario. */
  herdSize: number;
  /** Stored misses the memory scenario makes before measuring (`--objects`). */
  objects: number;
  /** Requests of the miss and pass scenarios' warm-up of each target (`--warmup-requests`). */
  warmupRequests: number;
  /** A fresh folder for this scenario's configs, caches and logs. */
  workDir: string;
  /** Unique per run, so unique-key loads never repeat a key. */
  runId: string;
  /** When set, Strata runs under `node --cpu-prof` and writes its profiles here. */
  profileDir: string | null;
  log(message: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Upper bound on the scenario's wall time; run.ts stops it past this. */
  budgetS(ctx: BenchContext): number;
  run(ctx: BenchContext): Promise<ScenarioReport>;
}

/**
 * Longest warm-up of the miss and pass scenarios, in seconds: the warm-up asks for
 * `warmupRequests` requests and stops here if they take longer.
 */
export const COUNTED_WARMUP_MAX_S = 40;

/**
 * An unmeasured load of at least `requests` requests (or `maxS` seconds), in back-to-back runs
 * of 2 s, so the measured run follows without a pause: a node left idle for half a minute has
 * collected its unused code (V8 flushes bytecode that several collections found unused) and
 * starts cold again.
 */
export async function warmByCount(
  load: Omit<LoadOptions, 'durationS'>,
  requests: number,
  maxS = COUNTED_WARMUP_MAX_S,
): Promise<{ requests: number; seconds: number }> {
  let done = 0;
  let seconds = 0;
  for (let slice = 0; done < requests && seconds < maxS && slice < 1000; slice++) {
    const result = await runLoad({ ...load, durationS: 2, runId: `${load.runId}-${slice}` });
    done += result.requests;
    seconds += result.durationS;
  }
  return { requests: done, seconds };
}

/** Seconds of unmeasured load before measuring: JIT, caches and connection pools warm up. */
export function warmupS(ctx: BenchContext): number {
  return Math.max(1, Math.min(3, Math.round(ctx.durationS / 3)));
}

export interface Measured extends LoadResult {
  /** Peak resident memory of the target's processes: everything, mapped files (LMDB's map) included. */
  rssMiB: number;
  /** Peak anonymous resident memory (RssAnon: heaps and buffers, not LMDB's map). */
  anonMiB: number;
  cpuUsPerRequest: number;
  /**
   * Share of the machine (all cores, wall time) that went neither to the target, the generator
   * nor the origin: other processes and hypervisor steal. Near 0 on a quiet machine.
   */
  interference: number;
  originRequests: number | null;
}

/** The columns every load measurement fills in a report row. */
export function measuredCells(label: string, connections: number, m: Measured) {
  return {
    target: label,
    conns: connections,
    rps: m.rps,
    p50: m.p50Ms,
    p99: m.p99Ms,
    errors: m.errors,
    rss: m.rssMiB,
    anon: m.anonMiB,
    cpu: m.cpuUsPerRequest,
    other: m.interference,
  };
}

export interface MeasureOptions {
  path: string;
  connections: number;
  durationS: number;
  unique: boolean;
  generatorCores: string | null;
  runId: string;
  originUrl: string | null;
  /** The origin's PID: its CPU time is the test's own work, not interference. */
  originPid?: number;
  /** 'h2': load over HTTP/2 (h2load). */
  protocol?: 'h2';
  /** Request header fields every request carries. */
  headers?: Record<string, string>;
}

/** Runs the generator against a target while sampling the target's RSS and CPU time. */
export async function measure(target: Target, options: MeasureOptions): Promise<Measured> {
  await waitQuiet();
  const before = options.originUrl === null ? null : await originCounts(options.originUrl);
  const sampler = new TreeSampler(target.proc.pid);
  const generator = new CpuFollower();
  const originPids = options.originPid === undefined ? [] : [options.originPid];
  const originBefore = cpuMs(originPids);
  const machineBefore = machineTimes();
  const startedAt = performance.now();
  let load: LoadResult;
  try {
    load = await runLoad({
      onSpawn: (pid) => generator.follow(pid),
      url: `${target.url}${options.path}`,
      connections: options.connections,
      durationS: options.durationS,
      unique: options.unique,
      cores: options.generatorCores,
      runId: options.runId,
      ...(options.protocol ? { protocol: options.protocol } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    });
  } catch (error) {
    sampler.stop();
    generator.stop();
    throw error;
  }
  const usage = sampler.stop();
  const generatorMs = generator.stop();
  const machineAfter = machineTimes();
  const originMs = cpuMs(originPids) - originBefore;
  const wallMs = (performance.now() - startedAt) * availableParallelism();
  const stealMs = machineAfter.stealMs - machineBefore.stealMs;
  const ownMs = usage.cpuMs + generatorMs + originMs;
  const otherMs = machineAfter.busyMs - machineBefore.busyMs - ownMs + stealMs;
  const after = options.originUrl === null ? null : await originCounts(options.originUrl);
  return {
    ...load,
    rssMiB: usage.peakRssKiB / 1024,
    anonMiB: usage.peakAnonKiB / 1024,
    cpuUsPerRequest: load.requests > 0 ? (usage.cpuMs * 1000) / load.requests : Number.NaN,
    interference: wallMs > 0 ? Math.max(0, otherMs / wallMs) : Number.NaN,
    originRequests: before === null || after === null ? null : after.total - before.total,
  };
}

let targetFilter: readonly string[] | null = null;

/** Restricts every scenario to the targets whose label starts with one of these (`--targets`). */
export function setTargetFilter(labels: readonly string[] | null): void {
  targetFilter = labels;
}

/**
 * Starts each target kind in turn (skipping, with a note, the ones not installed), hands it to
 * `body`, and always stops it. Targets never overlap: the core under test runs one at a time.
 * A target that fails is recorded in `report.error` and the next one still runs.
 */
export async function eachTarget(
  report: ScenarioReport,
  kinds: readonly { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[],
  base: Omit<TargetOptions, 'dir' | 'profileDir'> & { workDir: string; profileDir?: string | null },
  body: (target: Target, label: string) => Promise<void>,
): Promise<void> {
  for (const { kind, label, options } of kinds) {
    if (targetFilter !== null && !targetFilter.some((prefix) => label.startsWith(prefix))) continue;
    const reason = unavailable(kind);
    if (reason !== null) {
      report.notes.push(`${label}: skipped: ${reason}`);
      continue;
    }
    const { workDir, ...rest } = base;
    const slug = label.replace(/[^a-z0-9]+/gi, '-');
    const dir = path.join(workDir, slug);
    let target: Target | null = null;
    try {
      const profileDir = rest.profileDir ? path.join(rest.profileDir, path.basename(workDir), slug) : null;
      target = await startTarget(kind, { ...rest, ...options, dir, profileDir });
      await body(target, label);
    } catch (error) {
      // One target failing must not cost the figures of the others: note it, go on.
      const tail = target === null ? '' : logTail(target.proc);
      const message = `${label}: ${error instanceof Error ? error.message : String(error)}${tail}`;
      report.error = report.error === null ? message : `${report.error}\n${message}`;
    } finally {
      await target?.stop();
    }
  }
}

/**
 * Fills the cache with a path, then asks again until the answer is a hit (a fill may commit just
 * after its response ends) or ten tries pass; returns what the last answer reported.
 */
export async function prime(target: Target, path: string): Promise<string> {
  const first = await request(`${target.url}${path}`, {}, 30000);
  if (first.status !== 200) throw new Error(`${target.kind} answered ${first.status} for ${path}`);
  let outcome = 'none';
  for (let attempt = 0; attempt < 10; attempt++) {
    outcome = cacheOutcome(await request(`${target.url}${path}`, {}, 30000));
    if (outcome === 'hit') break;
    await sleep(100);
  }
  return outcome;
}
