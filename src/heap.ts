/**
 * V8's heap sizing for a serving process (`node.heap`). By default V8 lets the young generation
 * grow to 16 MB semi-spaces and the old generation to several times the live data between full
 * collections: under a steady miss load a node's heap reached about 200 MB committed for 25 MB
 * live. `small` stops the young generation from growing past the size it has and holds the old
 * generation's growth at 1.5x: measured 115.6 MiB of anonymous memory after 49,000 stored misses instead of 289.9,
 * for more CPU per request (docs/performance.md). Both flags are read by V8 as it resizes, so
 * setting them in a running process takes effect.
 */
import { setFlagsFromString } from 'node:v8';

export type HeapProfile = 'default' | 'small';

const SMALL = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'];

let applied: HeapProfile = 'default';

/**
 * Applies a heap profile to this process (once; a later different one is ignored).
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
  if (profile === 'default' || applied === profile) return;
  applied = profile;
  for (const flag of SMALL) setFlagsFromString(flag);
}

/** The profile applied to this process ('default' until applyHeapProfile says otherwise). */
export function appliedHeapProfile(): HeapProfile {
  return applied;
}
