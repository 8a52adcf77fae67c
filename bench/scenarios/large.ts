/**
 * large: one 1 GiB object fetched twice through the proxy (a miss that streams and stores it,
 * then a hit). The proxy's memory must stay bounded: the peak RSS of its process tree, sampled
 * from /proc every 50 ms, is the figure.
 */

import { repoRoot } from '../lib/generator.ts';
import { originCounts } from '../lib/http.ts';
import { rss, TreeSampler } from '../lib/proc-stats.ts';
import { capture, PINNING } from '../lib/processes.ts';
import { waitQuiet } from '../lib/quiet.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, type Scenario } from '../lib/scenario.ts';
import type { TargetKind } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';

const KINDS: { kind: TargetKind; label: string }[] = [
  { kind: 'strata', label: 'strata' },
  { kind: 'nginx', label: 'nginx' },
  { kind: 'varnish', label: 'varnish' },
];

const PATH = '/large/1g';
const MIB = 1024 * 1024;

interface Download {
  status: number | null;
  bytes: number;
  expected?: number;
  ms?: number;
  cacheStatus?: string | null;
  error: string | null;
}

async function download(url: string): Promise<Download> {
  const result = await capture({
    name: 'download-client',
    command: process.execPath,
    args: ['bench/download-client.ts', '--url', url, '--timeout-ms', '150000'],
    cores: PINNING.generator,
    cwd: repoRoot(),
    timeoutMs: 160000,
  });
  try {
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as Download;
  } catch {
    return {
      status: null,
      bytes: 0,
      error: `no summary (exit ${result.code}): ${result.stderr.slice(0, 300)}`,
    };
  }
}

function describe(d: Download): string {
  if (d.error !== null) return `error: ${d.error}`;
  const status = typeof d.cacheStatus === 'string' ? d.cacheStatus : 'no Cache-Status';
  return d.bytes === d.expected ? status : `${status} (got ${d.bytes} of ${d.expected} bytes)`;
}

async function runLarge(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport('large', '1 GiB object: miss (stream + store), then hit', [
    col('target', 'target'),
    col('missS', 'miss s', 'seconds'),
    col('missRate', 'miss MiB/s', 'int'),
    col('hitS', 'hit s', 'seconds'),
    col('hitRate', 'hit MiB/s', 'int'),
    col('hitStatus', '2nd answer'),
    col('rssBefore', 'RSS before MiB', 'mib'),
    col('peakRss', 'peak RSS MiB', 'mib'),
    col('peakAnon', 'peak anon MiB', 'mib'),
    col('originRequests', 'origin reqs', 'int'),
  ]);
  report.notes.push(
    `${PINNING.label}; RSS summed over the proxy's processes, sampled every 50 ms; anon = RssAnon ` +
      "(heap and buffers; the total also counts mapped file pages such as LMDB's map); " +
      'Varnish runs with -s malloc (memory storage by design)',
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
      await waitQuiet();
      const rssBefore = rss(target.proc.pid).totalKiB / 1024;
      const before = await originCounts(origin.url);
      const sampler = new TreeSampler(target.proc.pid, 50);
      ctx.log(`large: ${label} miss`);
      const miss = await download(`${target.url}${PATH}`);
      ctx.log(`large: ${label} hit`);
      const hit = await download(`${target.url}${PATH}`);
      const usage = sampler.stop();
      const after = await originCounts(origin.url);
      const rate = (d: Download): number | null =>
        d.error === null && d.ms !== undefined ? d.bytes / MIB / (d.ms / 1000) : null;
      if (miss.error !== null || miss.bytes !== miss.expected)
        report.notes.push(`${label}: miss ${describe(miss)}`);
      report.rows.push({
        target: label,
        missS: miss.ms === undefined ? null : miss.ms / 1000,
        missRate: rate(miss),
        hitS: hit.ms === undefined ? null : hit.ms / 1000,
        hitRate: rate(hit),
        hitStatus: describe(hit),
        rssBefore,
        peakRss: usage.peakRssKiB / 1024,
        peakAnon: usage.peakAnonKiB / 1024,
        originRequests: after.total - before.total,
      });
    });
  });
  return report;
}

export const largeScenario: Scenario = {
  name: 'large',
  title: '1 GiB object through miss and hit',
  budgetS: () => KINDS.length * 360,
  run: runLarge,
};
