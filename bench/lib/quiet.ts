/**
 * Waiting for a quiet machine. On a shared machine other work takes the cores in bursts; with
 * `--wait-quiet S` every measured run first waits (at most S seconds) until the cores are at
 * least 80% idle over two seconds, so the figures come from the calm between bursts.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineTimes } from './proc-stats.ts';

const BUSY_LIMIT = 0.2;
const WINDOW_MS = 2000;

let limitS = 0;
let log: (message: string) => void = () => {};

export function setQuietWait(seconds: number, logger: (message: string) => void): void {
  limitS = seconds;
  log = logger;
}

/** Share of all cores busy over the next two seconds. */
async function busyShare(): Promise<number> {
  const before = machineTimes();
  const startedAt = performance.now();
  await sleep(WINDOW_MS);
  const elapsedMs = (performance.now() - startedAt) * availableParallelism();
  return (machineTimes().busyMs - before.busyMs) / elapsedMs;
}

/** Waits, bounded by the configured limit, until the machine is mostly idle; no-op when off. */
export async function waitQuiet(): Promise<void> {
  if (limitS === 0) return;
  const deadline = Date.now() + limitS * 1000;
  let busy = 1;
  for (let attempt = 0; Date.now() < deadline && attempt < 10_000; attempt++) {
    busy = await busyShare();
    if (busy < BUSY_LIMIT) return;
    if (attempt % 15 === 0) log(`waiting for a quiet machine (${Math.round(busy * 100)}% busy)`);
  }
  log(`machine still ${Math.round(busy * 100)}% busy after ${limitS} s: measuring anyway`);
}
