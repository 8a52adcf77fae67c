/**
 * Active health checks: one prober per node (the single process, or the cluster primary, whose
 * results go to every worker), probing each checked origin with GET `path` every `interval`,
 * jittered by ±10% so origins and nodes do not probe in step. `unhealthy` failures in a row
 * mark an origin unhealthy (taken out of selection); `healthy` successes in a row bring it
 * back, into slow start. An origin never probed yet is healthy after one success.
 *
 * An origin named by several sites is probed once, with the check of the first site naming it.
 * State (counters, verdict) survives a reload for an origin whose URL and check did not change.
 */
import type { HealthCheckConfig } from '../config/schema.ts';
import type { ProbeVerdict } from './state.ts';
import type { OriginTlsOptions } from './tls.ts';
import { loadUndici, type UndiciParts } from './undici.ts';

export interface HealthTarget {
  name: string;
  url: string;
  hostHeader?: string | undefined;
  /** An https origin's own TLS options (CA, server name, verify), as its requests use them. */
  tls?: OriginTlsOptions | undefined;
  check: HealthCheckConfig;
}

export interface ProbeResult {
  ok: boolean;
  /** Time to response headers (ms), when headers came. */
  ms?: number | undefined;
}

export type Prober = (target: HealthTarget) => Promise<ProbeResult>;

/** Every probe's outcome: the origin's verdict after it, and the probe's time to headers if it passed. */
export type HealthListener = (name: string, verdict: ProbeVerdict, ms: number | undefined) => void;

interface Tracked {
  target: HealthTarget;
  successes: number;
  failures: number;
  verdict: ProbeVerdict;
  timer: NodeJS.Timeout | undefined;
  probes: number;
}

export interface HealthCheckerOptions {
  onResult: HealthListener;
  prober?: Prober;
  random?: () => number;
}

export class HealthChecker {
  readonly #tracked = new Map<string, Tracked>();
  readonly #onResult: HealthListener;
  readonly #prober: Prober;
  readonly #random: () => number;
  #running = false;

  constructor(options: HealthCheckerOptions) {
    this.#onResult = options.onResult;
    this.#prober = options.prober ?? httpProbe;
    this.#random = options.random ?? Math.random;
  }

  /** The origins to probe; those kept unchanged keep their counters and verdict. */
  update(targets: readonly HealthTarget[]): void {
    const next = new Map(targets.map((target) => [target.name, target]));
    for (const [name, tracked] of this.#tracked) {
      const target = next.get(name);
      if (target === undefined || !sameTarget(target, tracked.target)) {
        clearTimeout(tracked.timer);
        this.#tracked.delete(name);
      }
    }
    for (const target of targets) {
      if (this.#tracked.has(target.name)) continue;
      const tracked: Tracked = {
        target,
        successes: 0,
        failures: 0,
        verdict: 'unknown',
        timer: undefined,
        probes: 0,
      };
      this.#tracked.set(target.name, tracked);
      // The first probe of each origin at a random point of its first interval.
      if (this.#running) this.#schedule(tracked, target.check.interval * this.#random());
    }
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const tracked of this.#tracked.values())
      this.#schedule(tracked, tracked.target.check.interval * this.#random());
  }

  stop(): void {
    this.#running = false;
    for (const tracked of this.#tracked.values()) {
      clearTimeout(tracked.timer);
      tracked.timer = undefined;
    }
  }

  /** Each checked origin's verdict (sent to a worker that starts). */
  snapshot(): Array<{ name: string; verdict: ProbeVerdict }> {
    return [...this.#tracked.values()].map((t) => ({ name: t.target.name, verdict: t.verdict }));
  }

  /** Probes sent to an origin so far (tests, /stats). */
  probes(name: string): number {
    return this.#tracked.get(name)?.probes ?? 0;
  }

  /** Probes one origin now and applies the result; the verdict after it. */
  async probe(name: string): Promise<ProbeVerdict | undefined> {
    const tracked = this.#tracked.get(name);
    if (tracked === undefined) return undefined;
    tracked.probes++;
    let result: ProbeResult;
    try {
      result = await this.#prober(tracked.target);
    } catch {
      result = { ok: false };
    }
    if (this.#tracked.get(name) !== tracked) return undefined; // removed or replaced meanwhile
    const { check } = tracked.target;
    if (result.ok) {
      tracked.successes++;
      tracked.failures = 0;
      const needed = tracked.verdict === 'unknown' ? 1 : check.healthy;
      if (tracked.verdict !== 'healthy' && tracked.successes >= needed) tracked.verdict = 'healthy';
    } else {
      tracked.failures++;
      tracked.successes = 0;
      if (tracked.verdict !== 'unhealthy' && tracked.failures >= check.unhealthy)
        tracked.verdict = 'unhealthy';
    }
    // A failure that is no verdict yet (fewer than `unhealthy` since the check began: a new
    // origin, or a check a reload changed) leaves the origin as it was: reported as `unknown`, it
    // made an origin the old check had taken out usable again until the new one decided.
    if (tracked.verdict !== 'unknown' || result.ok)
      this.#onResult(name, tracked.verdict, result.ok ? result.ms : undefined);
    return tracked.verdict;
  }

  #schedule(tracked: Tracked, delay: number): void {
    clearTimeout(tracked.timer);
    tracked.timer = setTimeout(() => {
      tracked.timer = undefined;
      void this.probe(tracked.target.name).finally(() => {
        if (this.#running && this.#tracked.get(tracked.target.name) === tracked) {
          const interval = tracked.target.check.interval;
          this.#schedule(tracked, interval * (0.9 + 0.2 * this.#random()));
        }
      });
    }, delay);
    tracked.timer.unref();
  }
}

function sameTarget(a: HealthTarget, b: HealthTarget): boolean {
  return (
    a.url === b.url &&
    a.hostHeader === b.hostHeader &&
    JSON.stringify(a.check) === JSON.stringify(b.check) &&
    JSON.stringify(a.tls) === JSON.stringify(b.tls)
  );
}

/** Whether a status is within `expect` ("200" or "200-399"). */
export function expected(status: number, expect: string): boolean {
  const [low = '', high = low] = expect.split('-');
  return status >= Number(low) && status <= Number(high);
}

/**
 * GET path on the origin, answering ok when the status is expected within the timeout. An https
 * origin is probed over a connection of its own made with the origin's TLS options: a probe that
 * checked the certificate otherwise than the origin's requests do would call a private-CA (or
 * `verify: false`) origin unhealthy while it serves.
 */
export async function httpProbe(target: HealthTarget): Promise<ProbeResult> {
  let started = performance.now();
  const { check } = target;
  const { Agent } = await loadUndici();
  const own = target.tls === undefined ? undefined : new Agent({ connect: target.tls });
  const agent = own ?? plainAgent(Agent);
  // Appended, not resolved: `//health` against the origin would name a host called health.
  const url = new URL(`${new URL(target.url).origin}${check.path}`);
  // The sample is the time to headers on a ready connection, as the origin's requests measure it
  // on their kept-alive ones: a probe that opened its connection (every probe of an https origin,
  // on an agent of its own; a plain one whose connection had closed) counts from the connection
  // being made, not the TCP and TLS handshakes (an https origin answering in 1 ms read 10-20 ms
  // and lost all its traffic to a plain one).
  const connected = (origin: URL | string) => {
    if (String(origin).replace(/\/$/, '') === url.origin) started = Math.max(started, performance.now());
  };
  agent.on('connect', connected);
  try {
    const response = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: {
        ...(target.hostHeader ? { host: target.hostHeader } : {}),
        'user-agent': 'strata-health-check',
      },
      headersTimeout: check.timeout,
      bodyTimeout: check.timeout,
      signal: AbortSignal.timeout(check.timeout),
    });
    const ms = performance.now() - started;
    await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    return { ok: expected(response.statusCode, check.expect), ms };
  } finally {
    agent.off('connect', connected);
    void own?.destroy().catch(() => undefined);
  }
}

/** The agent of the probes of plain-HTTP origins (kept alive between probes, as undici's global one was). */
let plainProbes: InstanceType<UndiciParts['Agent']> | undefined;

function plainAgent(Agent: UndiciParts['Agent']): InstanceType<UndiciParts['Agent']> {
  if (plainProbes === undefined) {
    plainProbes = new Agent();
    // A `connect` listener per probe running (httpProbe): dozens of origins may be probed at once.
    plainProbes.setMaxListeners(0);
  }
  return plainProbes;
}
