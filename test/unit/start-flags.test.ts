import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { holdWhileStarting, releaseAfterStart } from '../../src/start-flags.ts';

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

// V8's own view of a function's tier, through its test intrinsics (this test process only).
setFlagsFromString('--allow-natives-syntax');
const waitForCompilers = new Function('%WaitForBackgroundOptimization()') as () => void;
const isOptimized = new Function('f', 'return %ActiveTierIsMaglev(f) || %ActiveTierIsTurbofan(f)') as (
  f: unknown,
) => boolean;

/** Runs a small hot function in bounded rounds; whether V8 optimized it by the end. */
function runsOptimized(hot: (x: number) => number): boolean {
  let sum = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 10_000; i++) sum += hot(i);
    waitForCompilers();
    if (isOptimized(hot)) return sum > 0;
  }
  return false;
}

describe('V8 settings held while a process starts (src/start-flags.ts)', () => {
  it('keeps the young generation at its size and code unoptimized while held; both as V8 decides once released', () => {
    holdWhileStarting();
    const before = newSpaceSize();
    assert.equal(allocateSurvivors(), 300_000);
    const held = newSpaceSize();
    assert.ok(held <= Math.max(before, 2 * MIB), `held: ${held / MIB} MiB (before ${before / MIB})`);
    const hotWhileHeld = (x: number): number => (x * 3 + 1) % 7;
    assert.equal(runsOptimized(hotWhileHeld), false, 'optimized while held');

    releaseAfterStart();
    assert.equal(allocateSurvivors(), 300_000);
    const released = newSpaceSize();
    assert.ok(released > held, `released: ${released / MIB} MiB, held ${held / MIB} MiB`);
    // The function that ran while held is optimized too once it runs hot again.
    assert.equal(runsOptimized(hotWhileHeld), true, 'not optimized after release');
    assert.equal(
      runsOptimized((x: number) => (x * 5 + 2) % 11),
      true,
    );
  });
});
