import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { originBytesRead } from '../../../src/cache/scavenger.ts';

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
});
