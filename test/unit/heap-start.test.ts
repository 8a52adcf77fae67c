import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { holdYoungGeneration, releaseYoungGeneration } from '../../src/heap.ts';

const MIB = 1024 * 1024;

/** The young generation's reserved size (both semi-spaces), in bytes. */
function newSpaceSize(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Allocates objects that survive a few scavenges (as module loading does), then drops them. */
function allocateSurvivors(): number {
  const kept: { i: number; s: string }[] = [];
  for (let i = 0; i < 300_000; i++) kept.push({ i, s: `x${i}` });
  return kept.length;
}

describe('the young generation at start (src/heap.ts)', () => {
  it('stays at its size while held, and grows again once released', () => {
    holdYoungGeneration();
    const before = newSpaceSize();
    assert.equal(allocateSurvivors(), 300_000);
    const held = newSpaceSize();
    assert.ok(held <= Math.max(before, 2 * MIB), `held: ${held / MIB} MiB (before ${before / MIB})`);
    releaseYoungGeneration();
    assert.equal(allocateSurvivors(), 300_000);
    const released = newSpaceSize();
    assert.ok(released > held, `released: ${released / MIB} MiB, held ${held / MIB} MiB`);
  });
});
