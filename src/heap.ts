/**
 * V8's heap sizing for a serving process (`node.heap`). On its own V8 sizes the young generation
 * by the machine's memory (64 MB semi-spaces on a 24 GiB machine: 128 MB of new space that a
 * steady miss load fills and keeps resident) and lets the old generation grow to up to 4 times
 * its live data between full collections. The default profile caps the semi-spaces at 16 MB
 * (capYoungGeneration, from releaseAfterStart) and the old generation's growth at 2.5x: after
 * 100,000 stored misses 135-145 MiB of anonymous memory instead of 254-264, for about 6% more
 * CPU per miss (docs/performance.md); a growth of 2x made a herd of 500 requests 50 ms slower.
 * `small` stops the young generation from growing and holds the old generation's growth at
 * 1.5x: less memory still, for more CPU per request. V8 reads these flags as it resizes, so setting them in a
 * running process takes effect; a flag of the same family given to node itself wins.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, type HeapSpaceInfo, setFlagsFromString } from 'node:v8';

export type HeapProfile = 'default' | 'small';

const SMALL = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'];

/**
 * The default profile's old generation grows to 2.5 times its live data between full
 * collections (V8 picks 1.1 to 4 times by its own speed measures: under a miss load, with little
 * live data and much garbage promoted, near 4). At 2 times, the full collections during a herd
 * of 500 requests cost it 50 ms of p50; at 2.5 and 3 times, nothing (docs/performance.md).
 */
const DEFAULT = givenToNode(['heap-growing']) ? [] : ['--heap-growing-percent=150'];

/** The profile applied, undefined before the first. */
let applied: HeapProfile | undefined;

/** Whether node was started with a flag containing one of `words` (command line or NODE_OPTIONS). */
export function givenToNode(words: readonly string[]): boolean {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return args.some((arg) => words.some((word) => arg.includes(word)));
}

/**
 * Applies a heap profile to this process (once; small may follow default, not the reverse).
 *
 * Whatever the profile, V8's allocation-site pretenuring is turned off. V8 decides, from one young
 * collection in which most objects of a site were still alive, to allocate that site's objects
 * straight into the old generation from then on, and it never takes the decision back. A node
 * meets that moment early (its first requests wait together for undici to load and for the first
 * origin connections): afterwards every request's context, headers and undici state went to the old
 * generation and lived until a full collection. Measured on the pass path: about 9 MB promoted per
 * young collection and 12-20 ms per collection, against 0.5 MB and 1.5 ms with pretenuring off
 * (docs/performance.md). A node keeps little on the JavaScript heap for long (bodies live in LMDB
 * and in buffers), so the copying pretenuring saves does not come back.
 */
export function applyHeapProfile(profile: HeapProfile): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
  if (applied === profile || applied === 'small') return;
  applied = profile;
  for (const flag of profile === 'small' ? SMALL : DEFAULT) setFlagsFromString(flag);
}

/** The profile applied to this process ('default' until applyHeapProfile says otherwise). */
export function appliedHeapProfile(): HeapProfile {
  return applied ?? 'default';
}

/** The default profile's bound on each of the young generation's two semi-spaces, in MiB. */
export const SEMI_SPACE_CAP_MIB = 16;

let capping: PerformanceObserver | undefined;

/** V8's statistics of one heap space ('new_space', 'old_space', ...), undefined if it has none. */
export function heapSpace(name: string): HeapSpaceInfo | undefined {
  return getHeapSpaceStatistics().find((space) => space.space_name === name);
}

/** The young generation's reserved size (both semi-spaces), in bytes. */
export function newSpaceSize(): number {
  return heapSpace('new_space')?.space_size ?? 0;
}

/**
 * Lets the young generation grow as V8 decides (doubling) until its semi-spaces reach `capMiB`,
 * and no further. V8 fixes its own maximum when the process starts (node's
 * `--max-semi-space-size`, which a running process cannot change), but it reads its growth
 * factor at each young collection: after every collection the factor is set to 1 once the new
 * space has reached the cap, and back to 2 below it (V8 shrinks the new space of an idle
 * process). Returns a function that stops the capping (the factor stays as last set).
 */
export function capYoungGeneration(capMiB = SEMI_SPACE_CAP_MIB): () => void {
  capping?.disconnect();
  const limit = 2 * capMiB * 1024 * 1024;
  let factor = 0;
  const steer = (): void => {
    const next = newSpaceSize() >= limit ? 1 : 2;
    if (next === factor) return;
    factor = next;
    setFlagsFromString(`--semi-space-growth-factor=${next}`);
  };
  const observer = new PerformanceObserver(steer);
  observer.observe({ entryTypes: ['gc'] });
  capping = observer;
  steer();
  return () => {
    observer.disconnect();
    if (capping === observer) capping = undefined;
  };
}
