/**
 * Passive outlier detection (Envoy's consecutive-5xx, nginx's max_fails): every attempt's
 * outcome updates its origin; after `consecutiveFailures` failures in a row the origin is
 * ejected for baseEjection × 2^(ejections in a row), up to maxEjection. A 503 with
 * Retry-After ejects at once for at least that long: the origin said when to come back.
 * An ejection ends into slow start, with the latency estimate forgotten.
 */
import type { OutlierConfig } from '../config/schema.ts';
import type { OriginState } from './state.ts';

/** Statuses that count as the origin failing (a gateway or overload answer), not the resource. */
export function failingStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

export function recordSuccess(origin: OriginState, ms: number, now: number): void {
  recordAnswer(origin, ms, now);
  recordWhole(origin);
}

/** An answer's time to headers: a latency sample, taken when the headers arrive. */
export function recordAnswer(origin: OriginState, ms: number, now: number): void {
  origin.latency.observe(ms, now);
}

/**
 * An answer that ended without the origin failing it: the failures in a row start again. Told
 * when its body ends, not at its headers: an origin that cuts every body short answers its
 * headers every time, and would never be ejected.
 */
export function recordWhole(origin: OriginState): void {
  origin.consecutiveFailures = 0;
  origin.ejectionsInRow = 0;
}

/**
 * Counts a failure against `origin`; ejects it when due and allowed (at most
 * maxEjectedPercent of `members`, but always one). Returns whether it was ejected.
 */
export function recordFailure(
  origin: OriginState,
  config: OutlierConfig,
  members: readonly OriginState[],
  now: number,
  retryAfterMs?: number,
): boolean {
  origin.latency.penalize(now);
  origin.consecutiveFailures++;
  if (origin.ejected(now)) return false;
  // Retry-After: 0 (or a date already past) says "try again now": a failure like any other,
  // not a request to stay away for baseEjection.
  const due = origin.consecutiveFailures >= config.consecutiveFailures || (retryAfterMs ?? 0) > 0;
  if (!due) return false;
  const ejected = members.filter((member) => member !== origin && member.ejected(now)).length;
  const allowed = Math.max(1, Math.floor((members.length * config.maxEjectedPercent) / 100));
  if (ejected + 1 > allowed) return false;
  const backoff = Math.min(
    config.maxEjection,
    config.baseEjection * 2 ** Math.min(origin.ejectionsInRow, 20),
  );
  const duration = Math.min(config.maxEjection, Math.max(backoff, retryAfterMs ?? 0));
  eject(origin, now + duration);
  return true;
}

/** Ejects until `until` (also used when another worker reports an ejection). */
export function eject(origin: OriginState, until: number): void {
  if (until <= origin.ejectedUntil) return;
  origin.ejectedUntil = until;
  origin.ejectionsInRow++;
  origin.ejections++;
  origin.consecutiveFailures = 0;
  origin.recoveredAt = until;
  origin.latency.reset();
}

/** Retry-After as ms from now: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or bad. */
export function retryAfterMs(value: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowEpochMs);
}
