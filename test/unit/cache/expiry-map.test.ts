import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryMap } from '../../../src/cache/expiry-map.ts';

describe('ExpiryMap', () => {
  it('answers a value until it expires, then forgets it', () => {
    const map = new ExpiryMap<number>(10, 100);
    map.set('a', 1, 1000, 0);
    assert.equal(map.get('a', 999), 1);
    assert.equal(map.get('a', 1000), undefined);
    assert.equal(map.size, 0);
  });

  it('sweeps expired entries once it holds sweepAt of them', () => {
    const map = new ExpiryMap<true>(10, 100);
    for (let i = 0; i < 10; i++) map.set(`old-${i}`, true, 100, 0);
    assert.equal(map.size, 10);
    map.set('new', true, 1000, 200);
    assert.equal(map.size, 1);
    assert.equal(map.get('new', 200), true);
  });

  it('never holds more than max entries: the oldest written are dropped', () => {
    const map = new ExpiryMap<number>(10, 100);
    for (let i = 0; i < 1000; i++) map.set(`k-${i}`, i, 1_000_000, 0);
    assert.equal(map.size, 99 + 1);
    assert.equal(map.get('k-0', 0), undefined);
    assert.equal(map.get('k-999', 0), 999);
    assert.equal(map.get('k-900', 0), 900);
  });

  it('writing a key again makes it the newest', () => {
    const map = new ExpiryMap<number>(2, 3);
    map.set('a', 1, 1000, 0);
    map.set('b', 2, 1000, 0);
    map.set('a', 3, 1000, 0);
    map.set('c', 4, 1000, 0);
    map.set('d', 5, 1000, 0);
    assert.equal(map.get('b', 0), undefined);
    assert.equal(map.get('a', 0), 3);
  });
});
