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
