/**
 * V8's heap sizing for a serving process (`node.heap`). By default V8 lets the young generation
 * grow to 16 MB semi-spaces and the old generation to several times the live data between full
 * collections: under a steady miss load a node's heap reached about 200 MB committed for 25 MB
 * live. `small` stops the young generation from growing past the size it has and holds the old
 * generation's growth at 1.5x: measured 115.6 MiB of anonymous memory after 49,000 stored misses instead of 289.9,
 * for more CPU per request (docs/performance.md). Both flags are read by V8 as it resizes, so
 * setting them in a running process takes effect.
 *
 * While a process starts (its modules read, its store opened) the young generation is held at its
 * initial size: loading allocates much that survives, and V8 would grow the semi-spaces to 16 MB
 * before the first request (about 10 MiB more resident memory at start). Once the node listens,
 * growth is released to V8's default so a loaded node gets the same young generation as before.
 */
import { setFlagsFromString } from 'node:v8';

export type HeapProfile = 'default' | 'small';

const SMALL = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'];

let applied: HeapProfile = 'default';

/** V8's own growth factor of the young generation (`node --v8-options`), and none at all. */
const GROWTH_DEFAULT = '--semi-space-growth-factor=2';
const GROWTH_HELD = '--semi-space-growth-factor=1';

/** Whether holdYoungGeneration() is in force; a semi-space flag given to node itself wins. */
let held = false;

function semiSpaceFlagGiven(): boolean {
  return [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) => arg.includes('semi-space'));
}

/** Keeps V8's young generation at its size while the process starts (cli/strata.js, worker-main.ts). */
export function holdYoungGeneration(): void {
  if (held || semiSpaceFlagGiven()) return;
  held = true;
  setFlagsFromString(GROWTH_HELD);
}

/**
 * The process has started (it listens): the young generation may grow again as V8 decides, or
 * as the `small` profile says when that one applies.
 */
export function releaseYoungGeneration(): void {
  if (!held) return;
  held = false;
  if (applied === 'default') setFlagsFromString(GROWTH_DEFAULT);
}

/** Applies a heap profile to this process (once; a later different one is ignored). */
export function applyHeapProfile(profile: HeapProfile): void {
  if (profile === 'default' || applied === profile) return;
  applied = profile;
  for (const flag of SMALL) setFlagsFromString(flag);
}
