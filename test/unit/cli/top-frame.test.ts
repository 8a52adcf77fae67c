import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../../cli/top.ts';

describe('strata top frames', () => {
  it('leaves requests refused before a lookup out of the hit ratio', () => {
    const traffic = {
      requests: 20,
      status: { '2xx': 5, '4xx': 15 },
      lookups: { hit: 4, miss: 1, rejected: 15 },
      bytes: { cache: 0, origin: 0 },
      originRequests: 1,
      purges: 0,
      purgedEntries: 0,
    };
    const stats = { traffic } as unknown as Parameters<typeof frame>[0];
    const first = frame(stats, undefined, undefined);
    assert.equal(first.lookups, 5);
    assert.equal(first.hits, 4);
    assert.equal(first.hitRatio, 0.8, '4 hits of 5 lookups, not of 20 requests');
    const allRefused = frame(
      { traffic: { ...traffic, lookups: { rejected: 30 } } } as unknown as Parameters<typeof frame>[0],
      { ...traffic, lookups: { rejected: 15 } },
      1,
    );
    assert.equal(allRefused.hitRatio, undefined, 'no lookup in the interval');
  });
});
