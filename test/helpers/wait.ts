/**
 * The one wait helper: polls `check` until it holds or `timeoutMs` passes. For conditions other
 * processes make true (a worker's log line, a peer's acknowledgement); a TTL is never waited
 * out, the injected clock moves instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 10,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}
