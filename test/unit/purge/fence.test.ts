import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFence, MAX_CLAIMS, mergeFence, parseFence } from '../../../src/purge/fence.ts';

const NODE = 'a3f1c2d4-0000-4000-8000-000000000001';

describe('Strata-Fence values', () => {
  it('reads back what it writes: origins (node ids, stream names) and their sequences', () => {
    const claims = [
      { origin: NODE, sequence: 17 },
      { origin: 'stream:strata-purges', sequence: 4096 },
    ];
    const value = formatFence(claims);
    assert.equal(value, `${NODE}=17, stream:strata-purges=4096`);
    assert.deepEqual(parseFence(value), claims);
  });

  it('refuses malformed values as a whole', () => {
    for (const bad of [
      '',
      'node',
      'node=',
      '=3',
      'node=0',
      'node=-1',
      'node=1.5',
      'node=99999999999999999999',
      'no de=1',
      'node=1,,other=2',
      `${'x'.repeat(65)}=1`,
      Array.from({ length: MAX_CLAIMS + 1 }, (_, i) => `n${i}=1`).join(', '),
      'x'.repeat(5000),
    ])
      assert.equal(parseFence(bad), undefined, bad);
    assert.equal(parseFence(['a=1', 'b=2']), undefined);
    assert.equal(parseFence(undefined), undefined);
  });

  it('merges two lists with the higher sequence per origin', () => {
    assert.deepEqual(
      mergeFence(
        [
          { origin: 'a', sequence: 3 },
          { origin: 'b', sequence: 9 },
        ],
        [
          { origin: 'b', sequence: 7 },
          { origin: 'c', sequence: 1 },
        ],
      ),
      [
        { origin: 'a', sequence: 3 },
        { origin: 'b', sequence: 9 },
        { origin: 'c', sequence: 1 },
      ],
    );
  });
});
