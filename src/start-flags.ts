/**
 * V8 settings held while a process starts (its modules read, its config validated, its store
 * opened), released once it listens. Both cut what a node holds before its first request
 * without changing what it does under load (docs/performance.md, "RSS at start"):
 *
 * - The young generation stays at its initial size. Loading allocates much that survives, and
 *   V8 would grow the semi-spaces to 16 MB before the first request: about 10 MiB resident.
 * - The optimizing compilers (Maglev, Turbofan) stay off. Functions that run hot while modules
 *   load (schema building, module bodies) would be optimized once and never again: their
 *   compilers' code and zones cost about 9 MiB resident (7.5 of them pages of the node binary).
 *   Code runs in the interpreter and Sparkplug meanwhile (no measurable difference in the time a
 *   node takes to listen).
 *
 * On release the young generation may grow as V8 decides up to the default profile's cap
 * (heap.ts), or as `node.heap: small` says when that profile applies, and hot functions are
 * optimized as before. V8 reads these flags as it goes, so setting them in a running process
 * takes effect. A flag of the same family given to node itself wins: it is neither held nor
 * released here.
 */
import { setFlagsFromString } from 'node:v8';
import { collectAfterStart } from './cache/scavenger.ts';
import { appliedHeapProfile, capYoungGeneration, givenToNode } from './heap.ts';

interface Hold {
  /** Words of node flags that leave this hold to the user (`semi-space`, `maglev`, ...). */
  given: readonly string[];
  held: readonly string[];
  released: () => readonly string[];
}

const HOLDS: readonly Hold[] = [
  {
    given: ['semi-space'],
    held: ['--semi-space-growth-factor=1'],
    // V8's own factor (2) up to the default profile's cap (heap.ts); the small profile keeps its own.
    released: () => {
      if (appliedHeapProfile() === 'default') capYoungGeneration();
      return [];
    },
  },
  {
    given: ['turbofan', 'maglev', '--opt', '--no-opt', 'jitless', 'max-opt'],
    held: ['--no-maglev', '--no-turbofan'],
    released: () => ['--maglev', '--turbofan'],
  },
];

let holding: Hold[] = [];

/** Called first thing in a process that will serve (cli/strata.js, worker-main.ts). */
export function holdWhileStarting(): void {
  if (holding.length > 0) return;
  holding = HOLDS.filter((hold) => !givenToNode(hold.given));
  for (const hold of holding) for (const flag of hold.held) setFlagsFromString(flag);
}

/** The process listens: V8 decides again. A no-op when nothing was held. */
export function releaseAfterStart(): void {
  if (holding.length > 0) collectAfterStart();
  for (const hold of holding) for (const flag of hold.released()) setFlagsFromString(flag);
  holding = [];
}
