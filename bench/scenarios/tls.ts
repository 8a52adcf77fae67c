/**
 * https-hit-1k, h2-hit-1k: a warmed 1 KiB key answered over TLS on keep-alive connections —
 * HTTPS/1.1 (wrk) and HTTP/2 (h2load, one stream at a time per connection) — against the
 * node:https / node:http2 ceiling (HTTP/2: through the compatibility API, and on the raw
 * 'stream' event) and nginx proxy_cache with the same certificate.
 */
import { GENERATOR, runLoad } from '../lib/generator.ts';
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
import { LOAD_COLUMNS } from './hit.ts';
import { withOrigin } from './origin.ts';

type Kind = { kind: TargetKind; label: string; options?: Partial<TargetOptions> };

const KINDS: Kind[] = [
  { kind: 'ceiling', label: 'ceiling' },
  { kind: 'strata', label: 'strata' },
  { kind: 'nginx', label: 'nginx' },
];

/**
 * HTTP/2 has two ceilings: node:http2's compatibility API (`ceiling`, the reference of the
 * ratio columns) and the raw 'stream' event Strata answers on (`ceiling raw`).
 */
const H2_KINDS: Kind[] = [
  { kind: 'ceiling', label: 'ceiling' },
  { kind: 'ceiling', label: 'ceiling raw', options: { h2Raw: true } },
  { kind: 'strata', label: 'strata' },
  { kind: 'nginx', label: 'nginx' },
];

function tlsScenario(name: string, protocol: 'h1' | 'h2'): Scenario {
  const title =
    protocol === 'h1'
      ? '1k hits over HTTPS/1.1 (TLS 1.3, keep-alive), one worker'
      : '1k hits over HTTP/2 (TLS 1.3, one stream per connection at a time), one worker';
  return {
    name,
    title,
    budgetS: (ctx) =>
      ctx.rounds *
      (protocol === 'h2' ? H2_KINDS : KINDS).length *
      (30 + ctx.connections.length * (ctx.durationS + 10) + warmupS(ctx)),
    run: (ctx) => runTls(ctx, name, title, protocol),
  };
}

async function runTls(
  ctx: BenchContext,
  name: string,
  title: string,
  protocol: 'h1' | 'h2',
): Promise<ScenarioReport> {
  const report = emptyReport(name, title, [
    col('target', 'target'),
    col('conns', 'conns', 'int'),
    ...LOAD_COLUMNS,
    col('xCeiling', '× ceiling', 'ratio'),
    col('cpuVsNginx', 'CPU × nginx', 'ratio'),
    col('xNginx', '× nginx', 'ratio'),
    col('originRequests', 'origin reqs', 'int'),
  ]);
  const generator = protocol === 'h2' ? 'h2load' : GENERATOR;
  report.notes.push(`${generator}, 1 thread; ${PINNING.label}; same EC P-256 certificate for every target`);
  if (protocol === 'h2') report.notes.push('h2load reports no percentiles: p50 is its mean time per request');
  if (ctx.rounds > 1) report.notes.push(`median of ${ctx.rounds} rounds; targets alternate within a round`);
  const path = '/1k';
  const load = protocol === 'h2' ? { protocol: 'h2' as const } : {};
  const samples: Row[] = [];
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
      tls: protocol,
    };
    for (let round = 1; round <= ctx.rounds; round++) {
      await eachTarget(report, protocol === 'h2' ? H2_KINDS : KINDS, base, async (target, label) => {
        const outcome = await prime(target, path);
        if (outcome !== 'hit')
          report.notes.push(`${label}: warning: second request reported ${outcome}, not hit`);
        ctx.log(`${name}: ${label} warming ${warmupS(ctx)} s`);
        await runLoad({
          url: `${target.url}${path}`,
          connections: Math.max(...ctx.connections),
          durationS: warmupS(ctx),
          unique: false,
          cores: PINNING.generator,
          runId: ctx.runId,
          warmup: true,
          ...load,
        });
        for (const connections of ctx.connections) {
          ctx.log(`${name}: ${label} ${connections} connections, ${ctx.durationS} s (round ${round})`);
          const m = await measure(target, {
            path,
            connections,
            durationS: ctx.durationS,
            unique: false,
            generatorCores: PINNING.generator,
            runId: ctx.runId,
            originUrl: origin.url,
            originPid: origin.proc.pid,
            ...load,
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
  addRatio(report.rows, { ref: 'nginx', key: 'cpu', as: 'cpuVsNginx', sameKey: 'conns' });
  addRatio(report.rows, { ref: 'nginx', key: 'rps', as: 'xNginx', sameKey: 'conns' });
  return report;
}

export const tlsScenarios: Scenario[] = [tlsScenario('https-hit-1k', 'h1'), tlsScenario('h2-hit-1k', 'h2')];
