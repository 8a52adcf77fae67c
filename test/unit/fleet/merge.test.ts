import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fits, MAX_MERGED, merge } from '../../../src/fleet/merge.ts';
import type { PurgeCommand } from '../../../src/purge/command.ts';

const hard = (urls: string[], tags: string[] = []): PurgeCommand => ({
  urls,
  prefixes: [],
  tags,
  all: false,
  soft: false,
});

describe('merging a backlog of bus purges', () => {
  it('unions the lists of purges of one kind, each item once', () => {
    const merged = merge([
      hard(['http://a.test/1'], ['t']),
      hard(['http://a.test/2', 'http://a.test/1']),
      { ...hard([]), hosts: ['b.test'] },
    ]);
    assert.deepEqual(merged, {
      urls: ['http://a.test/1', 'http://a.test/2'],
      prefixes: [],
      tags: ['t'],
      all: false,
      soft: false,
      hosts: ['b.test'],
    });
    assert.equal('hosts' in merge([hard(['x']), hard(['y'])]), false);
  });

  it('keeps hard and soft purges apart and bounds a batch', () => {
    assert.equal(fits([], { ...hard(['x']), soft: true }), true);
    assert.equal(fits([hard(['x'])], { ...hard(['y']), soft: true }), false);
    const full = Array.from({ length: MAX_MERGED }, (_, i) => hard([`http://a.test/${i}`]));
    assert.equal(fits(full.slice(0, -1), hard(['z'])), true);
    assert.equal(fits(full, hard(['z'])), false);
    const big = hard(Array.from({ length: 1999 }, (_, i) => `http://a.test/${i}`));
    assert.equal(fits([big], hard(['a', 'b'])), false);
    assert.equal(fits([big], hard(['a'])), true);
  });
});
