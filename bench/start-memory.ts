/**
 * Memory at start: what a process holds 2 s after it listens, before it has served any request,
 * read from /proc/PID/smaps_rollup (summed over the process tree), then again 2 s after one
 * 1 KiB miss. Targets: a bare `node -e 'setInterval(()=>{},1000)'` (no listener: read 2 s after
 * it started), the ceiling (bench/ceiling.ts, bare node:http), and Strata started as the bench
 * starts it (bench/lib/targets.ts: `cli/strata.ts serve` with --origin, a temp --cache-dir, the
 * admin listener and the bench config) with one worker and with two.
 *
 *   node bench/start-memory.ts [--repeat 3] [--targets bare,ceiling,strata-1,strata-2]
 *                              [--node-flags "--max-semi-space-size=1"]
 *
 * Each round starts every target in turn (alternating, so a drift of the machine touches all of
 * them alike); the table shows every round's figures and the median per target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { request } from './lib/http.ts';
import { memoryRollup } from './lib/proc-stats.ts';
import { killAllNow, PINNING, type Started, startProcess, stopAll, stopProcess } from './lib/processes.ts';
import { col, emptyReport, type Row, renderReport } from './lib/report.ts';
import { startTarget, type Target } from './lib/targets.ts';

const KINDS = ['bare', 'ceiling', 'strata-1', 'strata-2'] as const;
type Kind = (typeof KINDS)[number];

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    targets: { type: 'string', default: KINDS.join(',') },
    'node-flags': { type: 'string', default: '' },
    'settle-ms': { type: 'string', default: '2000' },
  },
});
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) throw new Error('--repeat: 1 to 50');
const settleMs = Number(values['settle-ms']);
const kinds = values.targets.split(',').filter((k): k is Kind => (KINDS as readonly string[]).includes(k));
const nodeFlags = values['node-flags'].split(/\s+/).filter((f) => f !== '');

const MIB = 1024;

interface Reading {
  rss: number;
  anon: number;
  file: number;
  afterRss: number | null;
  afterAnon: number | null;
}

function mib(pid: number): { rss: number; anon: number; file: number } {
  const m = memoryRollup(pid);
  return { rss: m.rssKiB / MIB, anon: m.anonKiB / MIB, file: m.fileKiB / MIB };
}

async function measureBare(): Promise<Reading> {
  const proc: Started = startProcess({
    name: 'bare',
    command: process.execPath,
    args: ['-e', 'setInterval(()=>{},1000)'],
    cores: PINNING.target,
  });
  try {
    await sleep(settleMs);
    return { ...mib(proc.pid), afterRss: null, afterAnon: null };
  } finally {
    await stopProcess(proc);
  }
}

async function measureTarget(kind: Kind, dir: string, originPort: number): Promise<Reading> {
  const workers = kind === 'strata-2' ? 2 : 1;
  const target: Target = await startTarget(kind === 'ceiling' ? 'ceiling' : 'strata', {
    dir,
    cores: PINNING.target,
    workers,
    originPort,
    readyBy: 'port',
    nodeFlags,
  });
  try {
    await sleep(settleMs);
    const start = mib(target.proc.pid);
    await request(`${target.url}/miss/1k?start-memory`);
    await sleep(settleMs);
    const after = mib(target.proc.pid);
    return { ...start, afterRss: after.rss, afterAnon: after.anon };
  } finally {
    await target.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'strata-start-memory-'));
  const report = emptyReport('start-memory', 'memory 2 s after listening, before any request', [
    col('target', 'target'),
    col('round', 'round'),
    col('rss', 'RSS MiB', 'mib'),
    col('anon', 'anon MiB', 'mib'),
    col('file', 'file MiB', 'mib'),
    col('afterRss', 'RSS after 1 miss', 'mib'),
    col('afterAnon', 'anon after 1 miss', 'mib'),
  ]);
  report.notes.push(
    `${PINNING.label}; Node ${process.version}; read from /proc/PID/smaps_rollup summed over the process tree ` +
      `${settleMs} ms after the port accepted a connection (bare: after it started), then ${settleMs} ms after one ` +
      `1 KiB miss; anon = Anonymous, file = Rss − Anonymous${nodeFlags.length > 0 ? `; node flags: ${nodeFlags.join(' ')}` : ''}`,
  );
  try {
    const origin = await startTarget('origin', { dir: path.join(work, 'origin'), cores: null, delayMs: 0 });
    const readings = new Map<Kind, Reading[]>(kinds.map((k) => [k, []]));
    // One start first, not measured: it fills Node's compile cache (cli/strata.js) for sources
    // changed since the last start, as any second start of a node finds it.
    if (kinds.some((k) => k.startsWith('strata')))
      await measureTarget('strata-1', path.join(work, 'warm'), origin.port);
    for (let round = 1; round <= repeat; round++) {
      for (const kind of kinds) {
        const dir = path.join(work, `${kind}-${round}`);
        const reading = kind === 'bare' ? await measureBare() : await measureTarget(kind, dir, origin.port);
        readings.get(kind)?.push(reading);
        report.rows.push({ target: kind, round: String(round), ...reading } as Row);
      }
    }
    for (const kind of kinds) {
      const all = readings.get(kind) ?? [];
      const pick = (f: (r: Reading) => number | null): number | null => {
        const xs = all.map(f).filter((x): x is number => x !== null);
        return xs.length === 0 ? null : median(xs);
      };
      report.rows.push({
        target: `**${kind}**`,
        round: 'median',
        rss: pick((r) => r.rss),
        anon: pick((r) => r.anon),
        file: pick((r) => r.file),
        afterRss: pick((r) => r.afterRss),
        afterAnon: pick((r) => r.afterAnon),
      });
    }
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(renderReport(report));
}

process.once('SIGINT', () => {
  killAllNow();
  process.exit(130);
});
await main();
