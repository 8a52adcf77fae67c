import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/index.ts';

describe('node.heap', () => {
  it('defaults to default, accepts small, and refuses anything else with its path', () => {
    const base = {
      origins: [{ name: 'o', url: 'http://127.0.0.1:9' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
    };
    const plain = validateConfig(base);
    assert.ok('config' in plain);
    assert.equal(plain.config.node.heap, 'default');
    const small = validateConfig({ ...base, node: { heap: 'small' } });
    assert.ok('config' in small);
    assert.equal(small.config.node.heap, 'small');
    const wrong = validateConfig({ ...base, node: { heap: 'tiny' } });
    assert.ok('problems' in wrong);
    assert.ok(
      wrong.problems.some((p) => p.path === 'node.heap'),
      JSON.stringify(wrong.problems),
    );
  });

  it('applies the small profile in a process without error (V8 reads the flags as it resizes)', async () => {
    const { applyHeapProfile } = await import('../../src/heap.ts');
    applyHeapProfile('small');
    applyHeapProfile('small');
    // A heap still collects and grows as needed under the profile.
    const kept = Array.from({ length: 50_000 }, (_, i) => ({ i }));
    assert.equal(kept.length, 50_000);
  });
});

describe('the default profile caps the young generation (capYoungGeneration)', () => {
  it('keeps the semi-spaces at the cap under steady allocation, and they grow again once it is lifted', async () => {
    const { capYoungGeneration, newSpaceSize } = await import('../../src/heap.ts');
    const { setFlagsFromString } = await import('node:v8');
    const MIB = 1024 * 1024;
    /**
     * A server's allocation: each turn of the event loop makes objects that live for the next 40
     * turns (requests in flight). The median new-space size over the turns: V8 lets it grow for
     * a while during a full collection's marking, and brings it back after.
     */
    const serve = async (): Promise<number> => {
      const sizes: number[] = [];
      const inFlight: { i: number; s: string }[][] = [];
      for (let turn = 0; turn < 400; turn++) {
        const batch: { i: number; s: string }[] = [];
        for (let i = 0; i < 5000; i++) batch.push({ i, s: `x${i}` });
        inFlight.push(batch);
        if (inFlight.length > 40) inFlight.shift();
        sizes.push(newSpaceSize());
        await new Promise((resolve) => setImmediate(resolve));
      }
      sizes.sort((a, b) => a - b);
      return sizes[sizes.length >> 1] ?? 0;
    };
    // Twice the size the test process's new space has now: it has to grow to the cap and be
    // stopped there (a cap it starts at would hold without any steering).
    const limit = Math.max(4 * MIB, 2 * newSpaceSize());
    const stop = capYoungGeneration(limit / 2 / MIB);
    const capped = await serve();
    assert.ok(capped <= limit, `capped at ${limit / MIB} MiB: median new space ${capped / MIB} MiB`);
    stop();
    setFlagsFromString('--semi-space-growth-factor=2');
    const free = await serve();
    assert.ok(free > limit, `uncapped: median new space ${free / MIB} MiB, cap ${limit / MIB} MiB`);
  });
});
