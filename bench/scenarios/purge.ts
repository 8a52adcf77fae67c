/**
 * purge-under-load: hit latency on a hot key while tags of other objects are purged (and
 * refilled) through the admin API. Skipped while Strata has no purge API.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { GENERATOR } from '../lib/generator.ts';
import { cacheOutcome, request } from '../lib/http.ts';
import { PINNING } from '../lib/processes.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  eachTarget,
  measure,
  measuredCells,
  prime,
  type Scenario,
} from '../lib/scenario.ts';
import { percentile } from '../lib/stats.ts';
import type { Target } from '../lib/targets.ts';
import { LOAD_COLUMNS } from './hit.ts';
import { withOrigin } from './origin.ts';

const TAGGED_OBJECTS = 100;
const PURGES_PER_SECOND = 20;
const HOT_PATH = '/1k';

/** One purge-by-tag call; resolves to the HTTP status, or 0 when nothing listens. */
async function purgeTag(target: Target, tag: string): Promise<number> {
  if (target.admin === null) return 0;
  try {
    const answer = await request(`${target.admin.url}/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.admin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tags: [tag] }),
    });
    return answer.status;
  } catch {
    return 0;
  }
}

interface PurgeLoop {
  sent: number;
  failed: number;
  /** Refills that came back as a miss: the purge took effect. */
  refilledMisses: number;
  latencies: number[];
}

/** Purges tag after tag on a fixed schedule until `until`, refilling each purged object. */
async function purgeLoop(target: Target, until: number): Promise<PurgeLoop> {
  const loop: PurgeLoop = { sent: 0, failed: 0, refilledMisses: 0, latencies: [] };
  const startedAt = Date.now();
  const intervalMs = 1000 / PURGES_PER_SECOND;
  for (let i = 0; Date.now() < until && i < 100_000; i++) {
    const tag = `p${i % TAGGED_OBJECTS}`;
    const sentAt = performance.now();
    const status = await purgeTag(target, tag);
    loop.latencies.push(performance.now() - sentAt);
    loop.sent++;
    if (status < 200 || status > 299) loop.failed++;
    const refill = await request(`${target.url}/t/${tag}/1k`).catch(() => null);
    if (refill !== null && cacheOutcome(refill) === 'miss') loop.refilledMisses++;
    const wait = startedAt + (i + 1) * intervalMs - Date.now();
    if (wait > 0) await sleep(wait);
  }
  return loop;
}

async function runPurge(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport('purge-under-load', 'hits on a hot key while other tags are purged', [
    col('target', 'load'),
    col('conns', 'conns', 'int'),
    ...LOAD_COLUMNS,
    col('purges', 'purges', 'int'),
    col('purgeFailed', 'purge errors', 'int'),
    col('refilledMisses', 'refill misses', 'int'),
    col('purgeP50', 'purge p50 ms', 'ms'),
    col('purgeP99', 'purge p99 ms', 'ms'),
  ]);
  const connections = ctx.connections[0] ?? 50;
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
    };
    await eachTarget(report, [{ kind: 'strata', label: 'strata' }], base, async (target) => {
      const probe = await purgeTag(target, 'bench-probe');
      if (probe === 0 || probe === 404) {
        report.skipped = `purge API not available (POST /purge on the admin port: ${probe === 0 ? 'connection refused' : '404'})`;
        return;
      }
      report.notes.push(
        `${GENERATOR}, 1 thread; ${PINNING.label}; up to ${PURGES_PER_SECOND} purges/s by tag (one at a time), ` +
          'each purged object refilled at once: "refill misses" counts the purges that took effect',
      );
      await prime(target, HOT_PATH);
      for (let i = 0; i < TAGGED_OBJECTS; i++) await request(`${target.url}/t/p${i}/1k`);
      const options = {
        path: HOT_PATH,
        connections,
        durationS: ctx.durationS,
        unique: false,
        generatorCores: PINNING.generator,
        runId: ctx.runId,
        originUrl: origin.url,
        originPid: origin.proc.pid,
      };
      ctx.log(`purge-under-load: hits only, ${ctx.durationS} s`);
      const quiet = await measure(target, options);
      ctx.log(`purge-under-load: hits + purges, ${ctx.durationS} s`);
      const [busy, loop] = await Promise.all([
        measure(target, options),
        purgeLoop(target, Date.now() + ctx.durationS * 1000),
      ]);
      for (const [label, m] of [
        ['hits only', quiet],
        ['hits + purges', busy],
      ] as const) {
        const purging = label === 'hits + purges';
        report.rows.push({
          ...measuredCells(label, connections, m),
          purges: purging ? loop.sent : null,
          purgeFailed: purging ? loop.failed : null,
          refilledMisses: purging ? loop.refilledMisses : null,
          purgeP50: purging ? percentile(loop.latencies, 50) : null,
          purgeP99: purging ? percentile(loop.latencies, 99) : null,
        });
      }
    });
  });
  return report;
}

export const purgeScenario: Scenario = {
  name: 'purge-under-load',
  title: 'hit latency while purging tags',
  budgetS: (ctx) => 90 + 2 * ctx.durationS,
  run: runPurge,
};
