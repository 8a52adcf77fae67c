import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import {
  type Collect,
  HERD_FULL_GROWTH,
  HERD_FULL_MAX_BYTES,
  HERD_SHARE,
  HERD_WAIT_MS,
  HerdCollector,
  originBytesRead,
} from '../../../src/cache/scavenger.ts';
import { createClock } from '../../helpers/clock.ts';

const MIB = 1024 * 1024;

/** A HerdCollector on an injected clock, collector, timer and old generation size. */
function herdCollector(collectMs = 30) {
  const clock = createClock();
  const collected: string[] = [];
  const timers: Array<{ run: () => void; ms: number }> = [];
  const heap = { old: 40 * MIB };
  const collect: Collect = ({ type }) => {
    collected.push(type);
    // collectMs per herd: one full collection, or two young ones.
    clock.advance((type === 'major' ? collectMs : collectMs / 2) / 1000);
    // A full collection leaves the live data; a young one promotes what is alive.
    if (type === 'major') heap.old = 20 * MIB;
  };
  const herds = new HerdCollector({
    now: clock.now,
    collect,
    schedule: (run, ms) => timers.push({ run, ms }),
    oldBytes: () => heap.old,
  });
  /** A herd forms; its timer fires with the herd still waiting or not. */
  const herd = (waiting = true) => {
    herds.herd(() => waiting);
    const timer = timers.shift()!;
    assert.equal(timer.ms, HERD_WAIT_MS);
    timer.run();
  };
  return { clock, collected, heap, herds, herd, timers };
}

describe('scavenger', () => {
  it('runs a young-generation collection once 8 MiB of origin body were read, not before', async () => {
    const kinds: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        kinds.push((entry as unknown as { detail: { kind: number } }).detail.kind);
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      originBytesRead(8 * 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 50));
      kinds.length = 0;
      originBytesRead(4 * 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(!kinds.includes(constants.NODE_PERFORMANCE_GC_MINOR), 'nothing at 4 MiB');
      originBytesRead(4 * 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(kinds.includes(constants.NODE_PERFORMANCE_GC_MINOR), `a minor collection (saw ${kinds})`);
    } finally {
      observer.disconnect();
    }
  });

  describe('HerdCollector', () => {
    it('collects fully for the first herd, then young twice while the old generation stays under its growth', () => {
      const { clock, collected, heap, herds, herd } = herdCollector();
      herd();
      assert.deepEqual(collected, ['major']);
      clock.advance(1);
      heap.old = 20 * MIB * HERD_FULL_GROWTH - 1;
      herd();
      assert.deepEqual(collected, ['major', 'minor', 'minor']);
      clock.advance(1);
      heap.old = 20 * MIB * HERD_FULL_GROWTH;
      herd();
      assert.deepEqual(collected, ['major', 'minor', 'minor', 'major']);
      assert.deepEqual(herds.made, { young: 1, full: 2 });
    });

    it('collects young only while the old generation is past HERD_FULL_MAX_BYTES, full again under it', () => {
      const { clock, collected, heap, herd } = herdCollector();
      heap.old = HERD_FULL_MAX_BYTES + 1;
      herd();
      assert.deepEqual(collected, ['minor', 'minor'], 'no full collection of a large heap, even the first');
      clock.advance(1);
      heap.old = HERD_FULL_MAX_BYTES;
      herd();
      assert.deepEqual(collected, ['minor', 'minor', 'major']);
    });

    it('collects nothing for a herd whose origin answered within HERD_WAIT_MS', () => {
      const { collected, herd } = herdCollector();
      herd(false);
      assert.deepEqual(collected, []);
      herd(true);
      assert.deepEqual(collected, ['major']);
    });

    it('takes at most HERD_SHARE of the time: after a 30 ms collection, none for the next 270 ms', () => {
      const { clock, collected, herd } = herdCollector(30);
      herd();
      assert.equal(collected.length, 1);
      const wait = 30 * (1 / HERD_SHARE - 1);
      clock.advance((wait - 1) / 1000);
      herd();
      assert.equal(collected.length, 1, 'one millisecond early');
      clock.advance(1 / 1000);
      herd();
      assert.equal(collected.length, 3);
    });

    it('schedules nothing where the collector is unavailable', () => {
      const timers: unknown[] = [];
      const herds = new HerdCollector({
        now: Date.now,
        collect: null,
        schedule: (run) => timers.push(run),
        oldBytes: () => 0,
      });
      herds.herd(() => true);
      assert.equal(timers.length, 0);
    });
  });
});
