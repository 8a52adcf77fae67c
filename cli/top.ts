/**
 * strata top [--admin URL --token T | --config FILE] [--interval S] [--count N] [--json]
 *
 * A live view of a running node, refreshed from GET /stats every interval: requests per
 * second, hit ratio, bytes sent, status classes, origin requests and each origin's health,
 * purges, the store. Rates are the change between two refreshes. Ends after --count frames,
 * or on Ctrl-C (exit 0).
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { StatsView, TrafficView } from '../src/index.ts';
import { CliError, callAdmin, openTarget, run, type TargetFlags, targetOptions } from './admin-client.ts';
import { formatBytes, formatTable } from './table.ts';

interface TopFlags extends TargetFlags {
  interval: number;
  count: number;
}

/** What /stats says about traffic: totals since start. */
type Traffic = TrafficView;

interface OriginRow {
  name: string;
  state: string;
  healthCheck: string;
  /** null (in /stats) until the origin has answered once. */
  latencyMs: number | null | undefined;
  pending: number;
  ejections: number;
}

type Stats = StatsView & {
  traffic?: Traffic;
  collapse?: { pending: number; waiters: number };
  sites?: Array<{ site: string; origins: OriginRow[] }>;
};

/** Lookups answered from the store: what the hit ratio counts as hits. */
const FROM_CACHE = ['hit', 'stale', 'stale-while-revalidate', 'stale-if-error'];

/** A frame's numbers: the change since the previous frame, over `seconds`. */
export interface Frame {
  at: string;
  seconds: number | undefined;
  requests: number;
  hits: number;
  lookups: number;
  hitRatio: number | undefined;
  bytes: number;
  bytesFromCache: number;
  status: Record<string, number>;
  originRequests: number;
  purges: number;
  purgedEntries: number;
  totals: Traffic;
  store: StatsView['store'];
  collapse: { pending: number; waiters: number } | undefined;
  origins: Array<OriginRow & { site: string }>;
}

const EMPTY: Traffic = {
  requests: 0,
  status: {},
  lookups: {},
  bytes: { cache: 0, origin: 0 },
  originRequests: 0,
  purges: 0,
  purgedEntries: 0,
};

const sum = (values: Record<string, number>, keys?: string[]) =>
  Object.entries(values).reduce(
    (total, [key, value]) => total + (keys && !keys.includes(key) ? 0 : value),
    0,
  );

/** Lookups made: every counted result but a request refused before any lookup. */
const looked = (traffic: Traffic) => sum(traffic.lookups) - (traffic.lookups.rejected ?? 0);

/** The frame between two /stats answers (`before` undefined: the first, totals since start). */
export function frame(stats: Stats, before: Traffic | undefined, seconds: number | undefined): Frame {
  const now = stats.traffic ?? EMPTY;
  const base = before ?? EMPTY;
  const diff = (a: number, b: number) => Math.max(0, a - b);
  const lookups = diff(looked(now), looked(base));
  const hits = diff(sum(now.lookups, FROM_CACHE), sum(base.lookups, FROM_CACHE));
  const status: Record<string, number> = {};
  for (const [name, value] of Object.entries(now.status)) status[name] = diff(value, base.status[name] ?? 0);
  return {
    at: new Date().toISOString(),
    seconds,
    requests: diff(now.requests, base.requests),
    hits,
    lookups,
    hitRatio: lookups === 0 ? undefined : hits / lookups,
    bytes: diff(now.bytes.cache + now.bytes.origin, base.bytes.cache + base.bytes.origin),
    bytesFromCache: diff(now.bytes.cache, base.bytes.cache),
    status,
    originRequests: diff(now.originRequests, base.originRequests),
    purges: diff(now.purges, base.purges),
    purgedEntries: diff(now.purgedEntries, base.purgedEntries),
    totals: now,
    store: stats.store,
    collapse: stats.collapse,
    origins: (stats.sites ?? []).flatMap((site) =>
      site.origins.map((origin) => ({ ...origin, site: site.site })),
    ),
  };
}

const perSecond = (value: number, seconds: number | undefined) =>
  seconds === undefined ? `${value}` : `${(value / seconds).toFixed(1)}/s`;

/** The human-readable frame. */
export function render(f: Frame, source: string): string {
  const rate = (value: number) => perSecond(value, f.seconds);
  const bytes = (value: number) =>
    f.seconds === undefined ? formatBytes(value) : `${formatBytes(value / f.seconds)}/s`;
  const span = f.seconds === undefined ? 'since start' : `over ${f.seconds.toFixed(1)}s`;
  const ratio = f.hitRatio === undefined ? '-' : `${(f.hitRatio * 100).toFixed(1)}%`;
  const classes = ['2xx', '3xx', '4xx', '5xx']
    .map((name) => `${name} ${rate(f.status[name] ?? 0)}`)
    .join('  ');
  const lines = [
    `strata top  ${source}  ${f.at.slice(11, 19)} UTC  (${span}; Ctrl-C to quit)`,
    '',
    `requests   ${rate(f.requests)}   hit ratio ${ratio}   origin requests ${rate(f.originRequests)}`,
    `sent       ${bytes(f.bytes)}   from cache ${bytes(f.bytesFromCache)}`,
    `status     ${classes}`,
    `purges     ${rate(f.purges)} (${rate(f.purgedEntries)} entries)   ${f.totals.purges} since start`,
    `store      ${f.store.entries} entries, ${formatBytes(f.store.bytes)} of ${formatBytes(f.store.capacity)}` +
      (f.collapse ? `   collapsing ${f.collapse.pending} keys, ${f.collapse.waiters} waiting` : ''),
    '',
    formatTable(
      ['SITE', 'ORIGIN', 'STATE', 'HEALTH CHECK', 'LATENCY', 'PENDING', 'EJECTIONS'],
      f.origins.map((o) => [
        o.site,
        o.name,
        o.state,
        o.healthCheck,
        o.latencyMs == null ? '-' : `${o.latencyMs.toFixed(1)} ms`,
        String(o.pending),
        String(o.ejections),
      ]),
    ),
  ];
  return lines.join('\n');
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

async function top(flags: TopFlags): Promise<number> {
  if (flags.cacheDir !== undefined)
    throw new CliError('strata top watches a running node: give --admin, not --cache-dir');
  const target = openTarget(flags);
  if (target.kind !== 'admin') return 1;
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  const screen = process.stdout.isTTY === true && !flags.json;
  let before: Traffic | undefined;
  let last = 0;
  try {
    for (let shown = 0; shown < flags.count && !stop.signal.aborted; shown++) {
      if (shown > 0) await pause(flags.interval * 1000, stop.signal);
      if (stop.signal.aborted) break;
      const answer = await callAdmin(target, 'GET', '/stats');
      const now = performance.now();
      const stats = answer.body as Stats;
      if (stats.traffic === undefined && shown === 0)
        throw new CliError(`the node at ${target.url} has no traffic section in /stats (an older version?)`);
      const f = frame(stats, before, before === undefined ? undefined : (now - last) / 1000);
      before = stats.traffic;
      last = now;
      if (flags.json) process.stdout.write(`${JSON.stringify(f)}\n`);
      else
        process.stdout.write(`${screen ? '\x1b[H\x1b[2J' : shown > 0 ? '\n' : ''}${render(f, target.url)}\n`);
    }
  } finally {
    process.removeListener('SIGINT', interrupt);
  }
  return 0;
}

function positive(max: number, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || n > max || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(`expected a${integer ? ' whole' : ''} number above 0, at most ${max}`);
    return n;
  };
}

/** Frames shown when --count is not given: a day at one a second. */
const DEFAULT_COUNT = 86_400;

export function registerTop(program: Command): void {
  const command = program
    .command('top')
    .description('live view of a running node: requests/s, hit ratio, bytes, origins, purges')
    .option('--interval <seconds>', 'seconds between refreshes', positive(3600, false), 1)
    .option('--count <n>', 'stop after this many refreshes', positive(10_000_000, true), DEFAULT_COUNT);
  // top watches a running node: --cache-dir is refused (saying so), not offered; its config
  // file gives the admin address and token only.
  for (const option of targetOptions()) {
    if (option.long === '--cache-dir') option.hideHelp();
    if (option.long === '--config')
      option.description = "the node's config file (its admin address and token)";
    command.addOption(option);
  }
  command.action((flags: TopFlags) => run(() => top(flags)));
}
