/**
 * origins-timeline: how fast latency selection moves traffic off a failing origin, and back,
 * under a steady open-loop load of misses (RATE req/s, a new key every request).
 *
 * Three origins run in this process at 10, 50 and 200 ms, recording when each request
 * arrives (the near one also each connection), so arrivals and the events share one clock.
 * After a warm-up on the healthy origins, the near origin changes at t0:
 *
 * - refusing: every connection (open ones and new ones) is reset as soon as it is accepted;
 *   each attempt is counted, and a GET caught by it is retried on another origin;
 * - black-hole: it accepts connections and requests and never answers (responseTimeout 2 s);
 * - slowdown: it answers after 300 ms instead of 10 ms; at t1 = t0 + SLOW_S it is back at 10 ms,
 *   and active health checks (interval 1 s) are on, so the time back is "checks + slow start".
 *
 * The share before and the latencies are those of the last second of the warm-up and after.
 * Drain time: the smallest t such that, of the attempts that arrive after t0 + t (until the
 * end of the observed window), fewer than 1% go to the near origin. Recovery: the time after
 * t1 until a 250 ms window first sees ≥ 95% of attempts on the near origin.
 */

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { PINNING } from '../lib/processes.ts';
import { col, emptyReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, eachTarget, type Scenario } from '../lib/scenario.ts';
import { percentile } from '../lib/stats.ts';
import type { Target } from '../lib/targets.ts';

const RATE = 1000;
const TICK_MS = 10;
const WARMUP_MS = 4000;
const OBSERVE_MS = 2000;
const SLOW_S = 3;
const RECOVER_MS = 15_000;
const BODY = Buffer.alloc(1024, 'x');
const PHASES = ['refusing', 'black-hole', 'slowdown'] as const;
type Phase = (typeof PHASES)[number];
type Mode = 'normal' | 'refusing' | 'black-hole' | 'slow';

/** An origin in this process whose behaviour can be switched, recording arrival times. */
class ScriptedOrigin {
  readonly arrivals: number[] = [];
  mode: Mode = 'normal';
  readonly #delayMs: number;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #held = new Set<http.ServerResponse>();
  port = 0;

  constructor(delayMs: number) {
    this.#delayMs = delayMs;
    this.#server = http.createServer({ keepAliveTimeout: 10_000 }, (req, res) => this.#answer(req, res));
    this.#server.on('connection', (socket: Socket) => {
      if (this.mode === 'refusing') {
        this.arrivals.push(performance.now());
        socket.resetAndDestroy();
        return;
      }
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  switchTo(mode: Mode): void {
    this.mode = mode;
    if (mode === 'refusing') for (const socket of this.#sockets) socket.resetAndDestroy();
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    if (this.mode === 'refusing') {
      res.socket?.resetAndDestroy();
      return;
    }
    // Health probes are answered but not counted as traffic.
    if (req.url !== '/healthz') this.arrivals.push(performance.now());
    if (this.mode === 'black-hole') {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    const delay = this.mode === 'slow' ? 300 : this.#delayMs;
    setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(BODY.length),
        'cache-control': 'max-age=60',
      });
      res.end(BODY);
    }, delay);
  }

  async close(): Promise<void> {
    for (const res of this.#held) res.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

interface LoadLog {
  sent: number;
  errors: number;
  /** [sent at, ms to the whole answer] of every 200. */
  latencies: [number, number][];
}

/** An open-loop client: RATE requests per second in batches every TICK_MS, each a new key. */
async function openLoop(url: string, runId: string, untilMs: number, log: LoadLog): Promise<void> {
  const pool = new Pool(url, {
    connections: 512,
    pipelining: 1,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const pending = new Set<Promise<void>>();
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  const start = performance.now();
  try {
    for (let tick = 0; performance.now() - start < untilMs && tick < untilMs / TICK_MS + 10; tick++) {
      for (let i = 0; i < perTick; i++) {
        const n = log.sent++;
        const sentAt = performance.now();
        const done = pool
          .request({ method: 'GET', path: `/timeline/${runId}/${n.toString(36)}/1k` })
          .then(async (answer) => {
            await answer.body.dump();
            if (answer.statusCode !== 200) log.errors++;
            else log.latencies.push([sentAt, performance.now() - sentAt]);
          })
          .catch(() => {
            log.errors++;
          })
          .finally(() => pending.delete(done));
        pending.add(done);
      }
      const next = start + (tick + 1) * TICK_MS;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await Promise.race([Promise.allSettled([...pending]), sleep(5000)]);
  } finally {
    await pool.destroy();
  }
}

/** ms after t0 from which fewer than 1% of attempts reach `near` (until `end`). */
function drainMs(near: number[], all: number[], t0: number, end: number): number {
  const nearAfter = near.filter((t) => t >= t0 && t < end).sort((a, b) => a - b);
  const allAfter = all.filter((t) => t >= t0 && t < end).sort((a, b) => a - b);
  for (let offset = 0; offset <= end - t0; offset += 5) {
    const from = t0 + offset;
    const nearCount = nearAfter.length - lowerBound(nearAfter, from);
    const allCount = allAfter.length - lowerBound(allAfter, from);
    if (allCount === 0 || nearCount / allCount < 0.01) return offset;
  }
  return end - t0;
}

/** ms after t1 until a 250 ms window first has ≥ 95% of attempts on `near`, or null. */
function recoveryMs(near: number[], all: number[], t1: number, end: number): number | null {
  for (let offset = 0; t1 + offset + 250 <= end; offset += 50) {
    const from = t1 + offset;
    const to = from + 250;
    const n = near.filter((t) => t >= from && t < to).length;
    const a = all.filter((t) => t >= from && t < to).length;
    if (a > 0 && n / a >= 0.95) return offset;
  }
  return null;
}

function lowerBound(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function strataConfig(phase: Phase, ports: { near: number; mid: number; far: number }) {
  const origin = (name: string, port: number) => ({
    name,
    url: `http://127.0.0.1:${port}`,
    connections: 64,
    maxConnections: 64,
    responseTimeout: '2s',
  });
  const site: Record<string, unknown> = {
    name: 'three',
    hosts: ['*'],
    origins: ['far', 'mid', 'near'],
    selection: 'latency',
  };
  if (phase === 'slowdown') site.healthCheck = { path: '/healthz', interval: '1s', timeout: '1s' };
  return {
    origins: [origin('far', ports.far), origin('mid', ports.mid), origin('near', ports.near)],
    sites: [site],
  };
}

async function runTimeline(ctx: BenchContext): Promise<ScenarioReport> {
  const report = emptyReport('origins-timeline', 'origin selection over time: drain and recovery', [
    col('phase', 'phase'),
    col('requests', 'client reqs', 'int'),
    col('errors', 'errors', 'int'),
    col('before', '10 ms share before'),
    col('drain', 'drained to < 1% (ms)', 'int'),
    col('after', '10 ms share after drain'),
    col('recovery', 'back to ≥ 95% (ms)', 'int'),
    col('p50', 'p50 ms', 'ms'),
    col('p99', 'p99 ms', 'ms'),
  ]);
  report.notes.push(
    `open-loop client in the bench process, ${RATE} req/s (a new key each, so every request is a miss), ` +
      `origins at 10/50/200 ms in the bench process; refusing = every connection reset on accept; ` +
      `slowdown = 300 ms for ${SLOW_S} s, health checks every 1 s; ${PINNING.label}`,
  );
  // The bench process's own client and servers warmed first (JIT, pools): the first phase
  // would otherwise measure this process starting up as much as the node.
  const warm = new ScriptedOrigin(1);
  await warm.listen();
  await openLoop(`http://127.0.0.1:${warm.port}`, `${ctx.runId}-warm`, 2000, {
    sent: 0,
    errors: 0,
    latencies: [],
  });
  await warm.close();
  for (const phase of PHASES) {
    const near = new ScriptedOrigin(10);
    const mid = new ScriptedOrigin(50);
    const far = new ScriptedOrigin(200);
    for (const origin of [near, mid, far]) await origin.listen();
    try {
      const kinds = [
        {
          kind: 'strata' as const,
          label: `strata ${phase}`,
          options: { strataConfig: strataConfig(phase, { near: near.port, mid: mid.port, far: far.port }) },
        },
      ];
      const base = {
        workDir: ctx.workDir,
        profileDir: ctx.profileDir,
        cores: PINNING.target,
        workers: 1,
        originPort: near.port,
      };
      await eachTarget(report, kinds, base, async (target) => {
        report.rows.push(await measureTimeline(ctx, phase, target, { near, mid, far }));
      });
    } finally {
      for (const origin of [near, mid, far]) await origin.close();
    }
  }
  return report;
}

async function measureTimeline(
  ctx: BenchContext,
  phase: Phase,
  target: Target,
  origins: { near: ScriptedOrigin; mid: ScriptedOrigin; far: ScriptedOrigin },
) {
  ctx.log(`origins-timeline: ${phase}`);
  const log: LoadLog = { sent: 0, errors: 0, latencies: [] };
  const slow = phase === 'slowdown';
  const total = WARMUP_MS + (slow ? SLOW_S * 1000 + RECOVER_MS : OBSERVE_MS);
  const start = performance.now();
  const load = openLoop(target.url, `${ctx.runId}-${phase}`, total, log);
  await sleep(WARMUP_MS);
  const t0 = performance.now();
  origins.near.switchTo(phase === 'slowdown' ? 'slow' : phase);
  let t1: number | null = null;
  if (slow) {
    await sleep(SLOW_S * 1000);
    t1 = performance.now();
    origins.near.switchTo('normal');
  }
  await load;
  const end = start + total;
  const all = [...origins.near.arrivals, ...origins.mid.arrivals, ...origins.far.arrivals];
  const share = (from: number, to: number) => {
    const n = origins.near.arrivals.filter((t) => t >= from && t < to).length;
    const a = all.filter((t) => t >= from && t < to).length;
    return a === 0 ? null : `${((100 * n) / a).toFixed(1)}%`;
  };
  const drainEnd = t1 ?? end;
  const byHalfSecond = new Map<number, number[]>();
  for (const [sentAt, ms] of log.latencies) {
    const bucket = Math.floor((sentAt - t0) / 500) * 500;
    const list = byHalfSecond.get(bucket);
    if (list === undefined) byHalfSecond.set(bucket, [ms]);
    else list.push(ms);
  }
  ctx.log(
    `origins-timeline: ${phase}: p50 ms per 500 ms sent, from t0: ` +
      [...byHalfSecond]
        .map(([bucket, list]) => `${bucket}:${Math.round(percentile(list, 50) ?? 0)}`)
        .join(' '),
  );
  // Latency of the requests sent from the last second of the warm-up on (the node is warm).
  const latencies = log.latencies.filter(([sentAt]) => sentAt >= t0 - 1000).map(([, ms]) => ms);
  const buckets = new Map<number, number>();
  for (const t of origins.near.arrivals) {
    const bucket = Math.floor((t - t0) / 100);
    if (bucket >= -5) buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
  }
  ctx.log(
    `origins-timeline: ${phase}: 10 ms origin arrivals per 100 ms from t0: ` +
      [...buckets].map(([bucket, n]) => `${bucket * 100}:${n}`).join(' '),
  );
  const drain = drainMs(origins.near.arrivals, all, t0, drainEnd);
  return {
    phase,
    requests: log.sent,
    errors: log.errors,
    before: share(t0 - 1000, t0),
    drain,
    after: share(t0 + drain, drainEnd),
    recovery: t1 === null ? null : recoveryMs(origins.near.arrivals, all, t1, end),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

export const originsTimelineScenario: Scenario = {
  name: 'origins-timeline',
  title: 'origin selection over time: drain on failure, recovery after',
  budgetS: () => 120,
  run: runTimeline,
};
