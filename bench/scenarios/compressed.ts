/**
 * hit-compressed: what a compressed hit costs (docs/compression.md). One warmed Strata node
 * answers four kinds of hits in the same run, alternating within each round:
 * - `br 100k text`: a 100 KiB text/plain object to clients sending `Accept-Encoding: br` — its
 *   stored br representation (N bytes, made once on the fill);
 * - `identity Nb`: an application/octet-stream object of exactly those N bytes, to clients
 *   without Accept-Encoding — an identity hit of the same stored size;
 * - `identity Nb vary`: the same N-byte object answered with `Vary: Accept-Encoding`, so its
 *   hit takes the variant lookup a br hit takes (two reads, the bucket as secondary key): what
 *   is left between it and `br 100k text` is the coding's own cost;
 * - `identity 100k text`: the text object's identity representation (100 KiB).
 * `× same size CPU` is a row's CPU per request over the `identity Nb` row's (1.00: the coding
 * costs nothing on a hit); `compressions` is how much strata_compressions_total moved during
 * the row's measured load (read from /metrics): 0 means no hit ran a compression.
 */

import { GENERATOR, runLoad } from '../lib/generator.ts';
import { request } from '../lib/http.ts';
import { PINNING } from '../lib/processes.ts';
import { addRatio, col, emptyReport, medianRows, type Row, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  eachTarget,
  measure,
  measuredCells,
  type Scenario,
  warmupS,
} from '../lib/scenario.ts';
import type { Target } from '../lib/targets.ts';
import { LOAD_COLUMNS } from './hit.ts';
import { withOrigin } from './origin.ts';

const NAME = 'hit-compressed';
const TITLE = 'a stored br hit against an identity hit of the same stored size, one worker';
const TEXT_PATH = '/text/100k';
const BR = { 'accept-encoding': 'br' };

interface Kind {
  label: string;
  path: string;
  headers?: Record<string, string>;
  stored: number;
}

/** Sum of strata_compressions_total over its codings, from the admin listener. */
async function compressions(target: Target): Promise<number> {
  if (target.admin === null) return Number.NaN;
  const res = await fetch(`${target.admin.url}/metrics`, {
    headers: { authorization: `Bearer ${target.admin.token}` },
  });
  const text = await res.text();
  let total = 0;
  for (const match of text.matchAll(/^strata_compressions_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm))
    total += Number(match[1]);
  return total;
}

/** Asks until the answer is a hit (a fill commits just after its response ends); its length. */
async function primeHit(target: Target, path: string, headers: Record<string, string> = {}) {
  for (let attempt = 0; attempt < 10; attempt++) {
    const answer = await request(`${target.url}${path}`, { headers }, 30000);
    if (answer.status !== 200) throw new Error(`strata answered ${answer.status} for ${path}`);
    if (/hit/.test(String(answer.headers['cache-status'])) && attempt > 0) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${path} never answered as a hit`);
}

async function kindsOf(target: Target): Promise<Kind[]> {
  const br = await primeHit(target, TEXT_PATH, BR);
  if (br.headers['content-encoding'] !== 'br') throw new Error(`${TEXT_PATH} was not answered in br`);
  const same = `/${br.bytes}b`;
  await primeHit(target, same);
  const varying = `/vary/${br.bytes}b`;
  await primeHit(target, varying);
  const identity = await primeHit(target, TEXT_PATH);
  // The 100 KiB identity hit first in a round, so that the compared kinds (br and the same-size
  // identity) never run right after its large writes and whatever collection they leave behind.
  return [
    { label: 'identity 100k text', path: TEXT_PATH, stored: identity.bytes },
    { label: `identity ${br.bytes}b vary`, path: varying, stored: br.bytes },
    { label: 'br 100k text', path: TEXT_PATH, headers: BR, stored: br.bytes },
    { label: `identity ${br.bytes}b`, path: same, stored: br.bytes },
  ];
}

async function runCompressed(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport(NAME, TITLE, [
    col('target', 'hit'),
    col('conns', 'conns', 'int'),
    col('stored', 'stored bytes', 'int'),
    ...LOAD_COLUMNS,
    col('cpuVsSameSize', '× same size CPU', 'ratio'),
    col('compressions', 'compressions', 'int'),
    col('originRequests', 'origin reqs', 'int'),
  ]);
  report.notes.push(`${GENERATOR}, 1 thread; ${PINNING.label}; the four kinds alternate within a round`);
  if (ctx.rounds > 1) report.notes.push(`median of ${ctx.rounds} rounds`);
  const samples: Row[] = [];
  let sameSize = '';
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      originPort: origin.port,
    };
    await eachTarget(report, [{ kind: 'strata', label: 'strata' }], base, async (target) => {
      const kinds = await kindsOf(target);
      sameSize = kinds.find((kind) => kind.label === `identity ${kinds[2]!.stored}b`)!.label;
      for (const kind of kinds) {
        ctx.log(`${NAME}: ${kind.label} warming ${warmupS(ctx)} s`);
        await runLoad({
          url: `${target.url}${kind.path}`,
          connections: Math.max(...ctx.connections),
          durationS: warmupS(ctx),
          unique: false,
          cores: PINNING.generator,
          runId: ctx.runId,
          ...(kind.headers ? { headers: kind.headers } : {}),
        });
      }
      for (let round = 1; round <= ctx.rounds; round++) {
        for (const connections of ctx.connections) {
          for (const kind of kinds) {
            ctx.log(`${NAME}: ${kind.label} ${connections} connections, ${ctx.durationS} s (round ${round})`);
            const before = await compressions(target);
            const m = await measure(target, {
              path: kind.path,
              connections,
              durationS: ctx.durationS,
              unique: false,
              generatorCores: PINNING.generator,
              runId: ctx.runId,
              originUrl: origin.url,
              originPid: origin.proc.pid,
              ...(kind.headers ? { headers: kind.headers } : {}),
            });
            samples.push({
              ...measuredCells(kind.label, connections, m),
              stored: kind.stored,
              compressions: (await compressions(target)) - before,
              originRequests: m.originRequests,
            });
          }
        }
      }
    });
  });
  report.rows = medianRows(samples, ['target', 'conns']);
  addRatio(report.rows, { ref: sameSize, key: 'cpu', as: 'cpuVsSameSize', sameKey: 'conns' });
  return report;
}

export const compressedScenario: Scenario = {
  name: NAME,
  title: TITLE,
  budgetS: (ctx) => 60 + 4 * warmupS(ctx) + ctx.rounds * ctx.connections.length * 4 * (ctx.durationS + 10),
  run: runCompressed,
};
