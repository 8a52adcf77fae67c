/** What a result was measured on: recorded beside every run's figures. */
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { GENERATOR, repoRoot } from './generator.ts';
import { capture, PINNING, which } from './processes.ts';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  commit: string;
  generator: string;
  pinning: string;
  nginx: string | null;
  varnish: string | null;
  trafficserver: string | null;
  wrk: string | null;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return match?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function versionOf(binary: string, args: string[], pattern: RegExp): Promise<string | null> {
  const path = which(binary);
  if (path === null) return null;
  const result = await capture({ name: binary, command: path, args, cores: null, timeoutMs: 5000 });
  return pattern.exec(result.stdout + result.stderr)?.[1] ?? 'unknown';
}

export async function describeMachine(): Promise<Machine> {
  const git = await capture({
    name: 'git',
    command: 'git',
    args: ['describe', '--always', '--dirty'],
    cores: null,
    cwd: repoRoot(),
    timeoutMs: 5000,
  });
  return {
    date: new Date().toISOString(),
    cpuModel: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    commit: git.stdout.trim() || 'unknown',
    generator: GENERATOR,
    pinning: PINNING.label,
    nginx: await versionOf('nginx', ['-v'], /nginx\/(\S+)/),
    varnish: await versionOf('varnishd', ['-V'], /varnish-(\S+)/),
    trafficserver: await versionOf('traffic_server', ['--version'], /Traffic Server (\S+)/),
    wrk: await versionOf('wrk', ['--version'], /wrk (\S+)/),
  };
}

export function renderMachine(m: Machine): string {
  const refs = [
    `nginx ${m.nginx ?? 'not installed'}`,
    `varnish ${m.varnish ?? 'not installed'}`,
    `trafficserver ${m.trafficserver ?? 'not installed'}`,
  ];
  return [
    `${m.date} · ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB · Node ${m.node} · commit ${m.commit}`,
    `generator: ${m.generator}${m.wrk === null ? '' : ` ${m.wrk}`} · ${m.pinning} · ${refs.join(' · ')}`,
  ].join('\n');
}
