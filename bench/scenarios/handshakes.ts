/**
 * tls-handshakes: TLS connections per second, each one request then closed, full handshakes and
 * resumed ones (session tickets), Strata against nginx with the same certificate, and the server
 * CPU each handshake costs. Strata with 2 workers shows that tickets resume on either worker.
 */
import { repoRoot } from '../lib/generator.ts';
import { TreeSampler } from '../lib/proc-stats.ts';
import { capture, PINNING } from '../lib/processes.ts';
import { waitQuiet } from '../lib/quiet.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, prime, type Scenario } from '../lib/scenario.ts';
import type { TargetKind, TargetOptions } from '../lib/targets.ts';
import { withOrigin } from './origin.ts';

const KINDS: { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[] = [
  { kind: 'strata', label: 'strata' },
  { kind: 'strata', label: 'strata 2 workers', options: { workers: 2, cores: null } },
  { kind: 'nginx', label: 'nginx' },
];

interface Summary {
  handshakes: number;
  resumed: number;
  errors: number;
  seconds: number;
  rate: number;
}

async function handshakes(port: number, durationS: number, resume: boolean): Promise<Summary> {
  const args = ['bench/handshake-client.ts', '--port', String(port), '--duration', String(durationS)];
  if (resume) args.push('--resume');
  const result = await capture({
    name: 'handshake-client',
    command: process.execPath,
    args,
    cores: PINNING.generator,
    cwd: repoRoot(),
    timeoutMs: (durationS + 20) * 1000,
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Summary;
  } catch {
    throw new Error(`handshake client gave no summary (exit ${result.code}): ${result.stderr.slice(0, 500)}`);
  }
}

async function run(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport('tls-handshakes', 'TLS handshakes per second (one request per connection)', [
    col('target', 'target'),
    col('mode', 'handshake'),
    col('rate', 'conn/s', 'int'),
    col('resumedShare', 'resumed', 'percent'),
    col('errors', 'errors', 'int'),
    col('cpu', 'CPU µs/conn', 'us'),
  ]);
  report.notes.push(
    'Node client, 8 connections at a time, one GET each; TLS 1.3, the same EC P-256 certificate',
  );
  await withOrigin(ctx, { delayMs: 0 }, async (origin) => {
    const base = {
      workDir: ctx.workDir,
      profileDir: ctx.profileDir,
      cores: PINNING.target,
      workers: 1,
      originPort: origin.port,
      tls: 'h1' as const,
    };
    await eachTarget(report, KINDS, base, async (target, label) => {
      await prime(target, '/1k');
      for (const resume of [false, true]) {
        await waitQuiet();
        const sampler = new TreeSampler(target.proc.pid);
        const s = await handshakes(target.port, ctx.durationS, resume);
        const usage = sampler.stop();
        report.rows.push({
          target: label,
          mode: resume ? 'resumed' : 'full',
          rate: s.rate,
          resumedShare: s.handshakes > 0 ? s.resumed / s.handshakes : null,
          errors: s.errors,
          cpu: s.handshakes > 0 ? (usage.cpuMs * 1000) / s.handshakes : null,
        });
      }
    });
  });
  return report;
}

export const handshakeScenario: Scenario = {
  name: 'tls-handshakes',
  title: 'TLS handshakes per second, full and resumed',
  budgetS: (ctx) => KINDS.length * (40 + 2 * (ctx.durationS + 25)),
  run,
};
