/**
 * What one worker knows of one origin: latency, requests in flight, passive ejection, the
 * verdict of the active health check, and when it last recovered (slow start). Shared by
 * every site that names the origin; kept across a config reload for an origin that stays.
 */
import { LatencyEwma } from './latency.ts';

export type ProbeVerdict = 'unknown' | 'healthy' | 'unhealthy';
/** What /stats and the `strata_origin_state` gauge show; the order is the gauge's value. */
export const ORIGIN_STATUSES = ['healthy', 'slow-start', 'ejected', 'unhealthy', 'draining'] as const;
export type OriginStatus = (typeof ORIGIN_STATUSES)[number];

export interface OriginTraits {
  name: string;
  region?: string | undefined;
  weight: number;
  maxConnections: number;
}

export class OriginState {
  traits: OriginTraits;
  readonly latency = new LatencyEwma();
  pending = 0;
  /** Start times of requests in flight, oldest first (Map keeps insertion order). */
  readonly #inflight = new Map<number, number>();
  #sequence = 0;
  consecutiveFailures = 0;
  /** Ejected until this time (ms, the selector's clock); 0 when never ejected. */
  ejectedUntil = 0;
  /** Ejections without a success in between: each doubles the next ejection. */
  ejectionsInRow = 0;
  ejections = 0;
  retries = 0;
  probe: ProbeVerdict = 'unknown';
  /** When the origin last came back (end of an ejection, a passing probe): slow start runs from here. */
  recoveredAt = Number.NEGATIVE_INFINITY;
  draining = false;

  constructor(traits: OriginTraits) {
    this.traits = traits;
  }

  get name(): string {
    return this.traits.name;
  }

  /** Counts a request in flight; returns the token that `finish` takes. */
  start(now: number): number {
    const token = ++this.#sequence;
    this.pending++;
    this.#inflight.set(token, now);
    return token;
  }

  finish(token: number): void {
    if (this.#inflight.delete(token)) this.pending--;
  }

  /** How long the oldest request in flight has waited (ms): a black-holed origin answers nothing. */
  oldestWait(now: number): number {
    for (const started of this.#inflight.values()) return now - started;
    return 0;
  }

  ejected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  usable(now: number): boolean {
    return !this.draining && !this.ejected(now) && this.probe !== 'unhealthy';
  }

  /** 1 at full share; from 0.1 up to 1 over `slowStart` ms after a recovery. */
  slowStartFactor(now: number, slowStart: number): number {
    if (slowStart <= 0 || now < this.recoveredAt) return 1;
    const elapsed = now - this.recoveredAt;
    return elapsed >= slowStart ? 1 : Math.max(0.1, elapsed / slowStart);
  }

  /** An active check's result: the verdict, and the probe's time to headers (a latency sample) if it passed. */
  applyProbe(verdict: ProbeVerdict, ms: number | undefined, now: number): void {
    // Back from unhealthy: ramps up again from slow start.
    if (this.probe === 'unhealthy' && verdict === 'healthy') this.recoveredAt = now;
    this.probe = verdict;
    if (verdict !== 'unhealthy' && ms !== undefined) this.latency.observe(ms, now);
  }

  status(now: number, slowStart: number): OriginStatus {
    if (this.draining) return 'draining';
    if (this.probe === 'unhealthy') return 'unhealthy';
    if (this.ejected(now)) return 'ejected';
    return this.slowStartFactor(now, slowStart) < 1 ? 'slow-start' : 'healthy';
  }
}
