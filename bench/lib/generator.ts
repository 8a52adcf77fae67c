/**
 * The load generator: wrk when installed (one thread, pinned to the generator core), else
 * autocannon from node_modules. Both report the same figures: requests, rate, p50/p99, errors.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { capture, which } from './processes.ts';

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Give every request a never-seen query string (a miss on every request). */
  unique: boolean;
  cores: string | null;
  /** Used as the unique-key prefix so separate runs never share keys. */
  runId: string;
  /** Told the generator's PID once it runs. */
  onSpawn?: (pid: number) => void;
  /** 'h2': HTTP/2 with h2load (one stream at a time per connection, like keep-alive HTTP/1.1). */
  protocol?: 'h2';
  /** Request header fields every request carries (`Accept-Encoding: br`). */
  headers?: Record<string, string>;
  /** An unmeasured warm-up: h2load sends a number of requests instead of running for a time. */
  warmup?: boolean;
}

/** `-H` arguments of wrk and h2load (`name: value`), or autocannon (`name=value`). */
function headerArgs(headers: Record<string, string> | undefined, separator: ': ' | '='): string[] {
  return Object.entries(headers ?? {}).flatMap(([name, value]) => ['-H', `${name}${separator}${value}`]);
}

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors, timeouts and responses outside 2xx/3xx. */
  errors: number;
}

const wrkPath = which('wrk');
const h2loadPath = which('h2load');
const require = createRequire(import.meta.url);

function autocannonScript(): string | null {
  try {
    return path.join(path.dirname(require.resolve('autocannon/package.json')), 'autocannon.js');
  } catch {
    return null;
  }
}

export const GENERATOR = wrkPath !== null ? 'wrk' : autocannonScript() !== null ? 'autocannon' : 'none';

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.protocol === 'h2') {
    if (h2loadPath === null)
      throw new Error('HTTP/2 load needs h2load (bench/setup installs nghttp2-client)');
    return runH2load(h2loadPath, options);
  }
  if (wrkPath !== null) return runWrk(wrkPath, options);
  const script = autocannonScript();
  if (script !== null) return runAutocannon(script, options);
  throw new Error('no load generator: install wrk (bench/setup) or run npm install (autocannon)');
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50_us: number;
  p99_us: number;
}

async function runWrk(wrk: string, options: LoadOptions): Promise<LoadResult> {
  const script = options.unique ? 'bench/wrk-unique.lua' : 'bench/wrk-report.lua';
  const args = [
    '-t1',
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    ...headerArgs(options.headers, ': '),
  ];
  args.push(options.url);
  if (options.unique) args.push('--', options.runId);
  const result = await capture({
    name: 'wrk',
    command: wrk,
    args,
    cores: options.cores,
    cwd: repoRoot(),
    timeoutMs: (options.durationS + 20) * 1000,
    onSpawn: options.onSpawn,
  });
  const line = result.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (line === undefined) {
    throw new Error(`wrk gave no summary (exit ${result.code}): ${result.stderr || result.stdout}`);
  }
  const s = JSON.parse(line.slice('WRK_JSON '.length)) as WrkSummary;
  const durationS = s.duration_us / 1e6;
  return {
    requests: s.requests,
    durationS,
    rps: s.requests / durationS,
    p50Ms: s.p50_us / 1000,
    p99Ms: s.p99_us / 1000,
    errors: s.connect + s.read + s.write + s.status + s.timeout,
  };
}

/**
 * h2load over HTTP/2 for `durationS` seconds. It reports a mean and no percentiles: p50 is the
 * mean time per request, p99 is left empty.
 */
async function runH2load(h2load: string, options: LoadOptions): Promise<LoadResult> {
  // h2load 1.52 in timing mode (-D) never exits when some of its clients have not finished
  // their TLS handshake by the end of the duration (seen warming 256 connections for 2 s on one
  // core): a warm-up asks for a number of requests instead, and ends when they are answered.
  const amount = options.warmup
    ? `-n${Math.max(options.connections * 20, options.durationS * 5000)}`
    : `-D${options.durationS}`;
  const args = ['-t1', `-c${options.connections}`, '-m1', amount];
  args.push(...headerArgs(options.headers, ': '), options.url);
  const result = await capture({
    name: 'h2load',
    command: h2load,
    args,
    cores: options.cores,
    cwd: repoRoot(),
    timeoutMs: (options.durationS + 20) * 1000,
    onSpawn: options.onSpawn,
  });
  const out = result.stdout;
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(out);
  const counts =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const time = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
  if (!finished || !counts || !status) {
    throw new Error(`h2load gave no summary (exit ${result.code}): ${result.stderr || out}`);
  }
  const done = Number(counts[2]);
  const durationS = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const unit = time?.[2] === 'us' ? 1 / 1000 : time?.[2] === 's' ? 1000 : 1;
  return {
    requests: done,
    durationS,
    rps: Number(finished[3]),
    p50Ms: time ? Number(time[1]) * unit : Number.NaN,
    p99Ms: Number.NaN,
    errors: Number(counts[4]) + Number(counts[5]) + Number(counts[6]) + Number(status[3]) + Number(status[4]),
  };
}

interface AutocannonSummary {
  requests: { total: number };
  latency: { p50: number; p99: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

async function runAutocannon(script: string, options: LoadOptions): Promise<LoadResult> {
  const url = options.unique ? `${options.url}?u=${options.runId}-[<id>]` : options.url;
  const args = [script, '-j', '-c', String(options.connections), '-d', String(options.durationS)];
  args.push('-t', '5', ...headerArgs(options.headers, '='));
  if (options.unique) args.push('-I');
  args.push(url);
  const result = await capture({
    name: 'autocannon',
    command: process.execPath,
    args,
    cores: options.cores,
    cwd: repoRoot(),
    timeoutMs: (options.durationS + 20) * 1000,
    onSpawn: options.onSpawn,
  });
  const start = result.stdout.indexOf('{');
  if (start === -1) throw new Error(`autocannon gave no summary (exit ${result.code}): ${result.stderr}`);
  const s = JSON.parse(result.stdout.slice(start)) as AutocannonSummary;
  return {
    requests: s.requests.total,
    durationS: s.duration,
    rps: s.requests.total / s.duration,
    p50Ms: s.latency.p50,
    p99Ms: s.latency.p99,
    errors: s.errors + s.timeouts + s.non2xx,
  };
}

export function repoRoot(): string {
  return path.resolve(import.meta.dirname, '..', '..');
}
