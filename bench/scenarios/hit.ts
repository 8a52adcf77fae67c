/**
 * hit-1k, hit-100k, hit-1m, hit-workers: a warmed cache answering one hot key over keep-alive
 * connections, against the ceiling (node:http from memory), nginx proxy_cache and Varnish.
 */
import http from 'node:http';
import type { SizeName } from '../lib/bodies.ts';
import { GENERATOR, runLoad } from '../lib/generator.ts';
import { cacheOutcome, request } from '../lib/http.ts';
import { PINNING } from '../lib/processes.ts';
import { addRatio, col, emptyReport, medianRows, type Row, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  eachTarget,
  measure,
  measuredCells,
  prime,
  type Scenario,
  warmupS,
} from '../lib/scenario.ts';
import type { TargetKind, TargetOptions } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';
import { RULE_KINDS } from './rules.ts';

export const LOAD_COLUMNS = [
  col('rps', 'req/s', 'int'),
  col('p50', 'p50 ms', 'ms'),
  col('p99', 'p99 ms', 'ms'),
  col('errors', 'errors', 'int'),
  col('rss', 'RSS MiB', 'mib'),
  col('anon', 'anon MiB', 'mib'),
  col('cpu', 'CPU µs/req', 'us'),
  col('other', 'other load', 'percent'),
];

interface HitOptions {
  name: string;
  size: SizeName;
  workers: number;
  /** Also run Strata with a site rate limit checked on every hit (never reached: its cost only). */
  rateLimited?: boolean;
  /** Only Strata: a site without rules against one with 50 (bench/scenarios/rules.ts). */
  rules?: boolean;
  /**
   * The ceiling and Strata twice: with only the hot body in its memory tier, and with this many
   * other bodies there too (each stored by a miss and brought to the tier by a hit before the load).
   */
  tierBodies?: number;
}

/** hit-tier's second Strata row: the memory tier holds `tierBodies` other bodies. */
const TIER_LABEL = 'strata+tier';

/**
 * hit-1k's calibration row: the ceiling spinning this many µs per request, so the table shows in
 * the same run what that much extra work costs in CPU per request and in `× ceiling CPU`.
 */
const CALIBRATION_US = 5;

/** A limit far above what the bench sends: every hit pays the check, none is refused. */
const BENCH_RATE_LIMIT = { rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 } };

type HitKind = { kind: TargetKind; label: string; options?: Partial<TargetOptions> };

/** The targets of a hit scenario, in the order they run. */
function hitKinds({ name, workers, rateLimited, rules, tierBodies }: HitOptions): HitKind[] {
  if (rules) return [...RULE_KINDS];
  if (tierBodies !== undefined) {
    return [
      { kind: 'ceiling', label: 'ceiling' },
      { kind: 'strata', label: 'strata' },
      { kind: 'strata', label: TIER_LABEL },
    ];
  }
  const kinds: HitKind[] = [{ kind: 'ceiling', label: 'ceiling' }];
  if (name === 'hit-1k') {
    kinds.push({
      kind: 'ceiling',
      label: `ceiling+${CALIBRATION_US}us`,
      options: { busyUs: CALIBRATION_US },
    });
  }
  kinds.push({ kind: 'strata', label: 'strata' });
  if (rateLimited)
    kinds.push({ kind: 'strata', label: 'strata+ratelimit', options: { security: BENCH_RATE_LIMIT } });
  kinds.push({ kind: 'nginx', label: 'nginx' });
  if (workers === 1) kinds.push({ kind: 'varnish', label: 'varnish' });
  if (name === 'hit-1k') kinds.push({ kind: 'trafficserver', label: 'trafficserver' });
  return kinds;
}

function hitScenario(hit: HitOptions): Scenario {
  const { name, size, workers, rules, tierBodies } = hit;
  const kinds = hitKinds(hit);
  const title = rules
    ? '1k hits on one warmed key, one worker: a site without rules against one with 50'
    : tierBodies !== undefined
      ? `1k hits on one warmed key, one worker, with ${tierBodies.toLocaleString('en-US')} other bodies in Strata's memory tier`
      : workers === 1
        ? `${size} hits on one warmed key, one worker`
        : `1k hits on one warmed key, ${workers} workers (nginx: ${workers} worker processes)`;
  return {
    name,
    title,
    budgetS: (ctx) =>
      ctx.rounds *
      (kinds.length * (30 + ctx.connections.length * (ctx.durationS + 10) + warmupS(ctx)) +
        (tierBodies === undefined ? 0 : 120)),
    run: (ctx) => runHit(ctx, { name, size, workers, rules, tierBodies }, title, kinds),
  };
}

async function runHit(
  ctx: BenchContext,
  options: HitOptions,
  title: string,
  kinds: { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[],
): Promise<ScenarioReport> {
  const report = emptyReport(options.name, title, [
    col('target', 'target'),
    col('conns', 'conns', 'int'),
    ...LOAD_COLUMNS,
    col('xCeiling', '× ceiling', 'ratio'),
    col('cpuVsCeiling', '× ceiling CPU', 'ratio'),
    col('xNginx', '× nginx', 'ratio'),
    col('originRequests', 'origin reqs', 'int'),
  ]);
  const multi = options.workers > 1;
  const targetCores = multi ? PINNING.all : PINNING.target;
  const generatorCores = multi ? null : PINNING.generator;
  report.notes.push(
    multi
      ? `${GENERATOR}, 1 thread; servers may use both cores (${options.workers} workers), generator unpinned`
      : `${GENERATOR}, 1 thread; ${PINNING.label}; origin on the generator core (idle on hits)`,
  );
  if (ctx.rounds > 1) report.notes.push(`median of ${ctx.rounds} rounds; targets alternate within a round`);
  if (kinds.some((k) => k.options?.busyUs !== undefined))
    report.notes.push(
      `ceiling+${CALIBRATION_US}us: the ceiling spinning ${CALIBRATION_US} µs of CPU before each answer (calibration: what that much work per request shows as here)`,
    );
  const path = `/${options.size}`;
  const samples: Row[] = [];
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: targetCores,
      workers: options.workers,
      originPort: origin.port,
    };
    for (let round = 1; round <= ctx.rounds; round++) {
      await eachTarget(report, kinds, base, async (target, label) => {
        const outcome = await prime(target, path);
        if (outcome !== 'hit')
          report.notes.push(`${label}: warning: second request reported ${outcome}, not hit`);
        if (label === TIER_LABEL && options.tierBodies !== undefined) {
          ctx.log(`${options.name}: ${label} storing ${options.tierBodies} bodies and hitting each once`);
          await fillTier(target.url, options.tierBodies, ctx.runId);
        }
        ctx.log(`${options.name}: ${label} warming ${warmupS(ctx)} s`);
        const maxConns = Math.max(...ctx.connections);
        await runLoad({
          url: `${target.url}${path}`,
          connections: maxConns,
          durationS: warmupS(ctx),
          unique: false,
          cores: generatorCores,
          runId: ctx.runId,
        });
        for (const connections of ctx.connections) {
          ctx.log(
            `${options.name}: ${label} ${connections} connections, ${ctx.durationS} s (round ${round})`,
          );
          const m = await measure(target, {
            path,
            connections,
            durationS: ctx.durationS,
            unique: false,
            generatorCores,
            runId: ctx.runId,
            originUrl: origin.url,
            originPid: origin.proc.pid,
          });
          samples.push({
            ...measuredCells(label, connections, m),
            originRequests: target.kind === 'ceiling' ? null : m.originRequests,
          });
        }
      });
    }
  });
  report.rows = medianRows(samples, ['target', 'conns']);
  report.notes = [...new Set(report.notes)];
  addRatio(report.rows, { ref: 'ceiling', key: 'rps', as: 'xCeiling', sameKey: 'conns' });
  addRatio(report.rows, { ref: 'ceiling', key: 'cpu', as: 'cpuVsCeiling', sameKey: 'conns', invert: true });
  addRatio(report.rows, { ref: 'nginx', key: 'rps', as: 'xNginx', sameKey: 'conns' });
  if (options.rules) noteRuleCost(report);
  return report;
}

/**
 * Stores `count` other 1 KiB objects (a miss each) and hits each once, which brings its body to
 * the memory tier: 16 keep-alive connections from the bench process. Throws unless every second
 * request was a hit.
 */
async function fillTier(base: string, count: number, runId: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const url = `${base}/1k?u=${runId}-tier-${next++}`;
      await request(url, { agent }, 30_000);
      const second = await request(url, { agent }, 30_000);
      if (cacheOutcome(second) !== 'hit')
        throw new Error(`${url}: second request not a hit (${String(second.headers['cache-status'])})`);
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    agent.destroy();
  }
}

/** hit-rules: the CPU per hit of the site with 50 rules against the one without, per connection count. */
function noteRuleCost(report: ScenarioReport): void {
  for (const row of report.rows) {
    if (row.target !== 'strata+50rules') continue;
    const base = report.rows.find((r) => r.target === 'strata' && r.conns === row.conns);
    if (typeof row.cpu !== 'number' || typeof base?.cpu !== 'number') continue;
    const extra = ((row.cpu - base.cpu) / base.cpu) * 100;
    report.notes.push(
      `${row.conns} conns: 50 rules cost ${extra >= 0 ? '+' : ''}${extra.toFixed(1)}% CPU per hit`,
    );
  }
}

export const hitScenarios: Scenario[] = [
  hitScenario({ name: 'hit-1k', size: '1k', workers: 1, rateLimited: true }),
  hitScenario({ name: 'hit-100k', size: '100k', workers: 1 }),
  hitScenario({ name: 'hit-1m', size: '1m', workers: 1 }),
  hitScenario({ name: 'hit-workers', size: '1k', workers: 2 }),
  hitScenario({ name: 'hit-rules', size: '1k', workers: 1, rules: true }),
  hitScenario({ name: 'hit-tier', size: '1k', workers: 1, tierBodies: 20_000 }),
];
