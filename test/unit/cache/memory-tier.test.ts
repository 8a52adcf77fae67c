import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryTier } from '../../../src/cache/memory-tier.ts';

const body = (size: number) => Buffer.alloc(size);

describe('MemoryTier', () => {
  it('returns what was set and counts its bytes', () => {
    const tier = new MemoryTier(100, 50);
    const a = body(10);
    tier.set('a', a);
    assert.equal(tier.get('a'), a);
    assert.equal(tier.bytes, 10);
    assert.equal(tier.get('missing'), undefined);
  });

  it('evicts the least recently used bodies until the bytes fit', () => {
    const tier = new MemoryTier(100, 100);
    tier.set('a', body(40));
    tier.set('b', body(40));
    tier.set('c', body(40));
    assert.equal(tier.get('a'), undefined);
    assert.ok(tier.get('b'));
    assert.ok(tier.get('c'));
    assert.equal(tier.bytes, 80);
  });

  it('a read makes a body the most recently used', () => {
    const tier = new MemoryTier(100, 100);
    tier.set('a', body(40));
    tier.set('b', body(40));
    tier.get('a');
    tier.set('c', body(40));
    assert.ok(tier.get('a'));
    assert.equal(tier.get('b'), undefined);
  });

  it('a body read while among the newer half keeps its place (no move on every read)', () => {
    const tier = new MemoryTier(100, 100);
    for (const id of ['a', 'b', 'c', 'd']) tier.set(id, body(25));
    tier.get('c'); // newer half: stays where it is
    tier.get('a'); // older half: moved to the newest end
    tier.set('e', body(25));
    assert.equal(tier.get('b'), undefined, 'the oldest goes first');
    tier.set('f', body(25));
    assert.equal(tier.get('c'), undefined, 'c was not moved by its read');
    for (const id of ['a', 'd', 'e', 'f']) assert.ok(tier.get(id), id);
    assert.equal(tier.bytes, 100);
  });

  it('a hot body read between arrivals outlives a thousand bodies that are never read again', () => {
    const tier = new MemoryTier(100, 10);
    const hot = body(1);
    tier.set('hot', hot);
    for (let i = 0; i < 1000; i++) {
      tier.set(`cold-${i}`, body(1));
      assert.equal(tier.get('hot'), hot, `after ${i + 1} arrivals`);
      assert.ok(tier.bytes <= 100);
    }
    assert.equal(tier.get('cold-0'), undefined);
    assert.ok(tier.get('cold-999'));
  });

  it('evicts several small bodies to make room for a large one', () => {
    const tier = new MemoryTier(100, 100);
    for (const id of ['a', 'b', 'c', 'd', 'e']) tier.set(id, body(20));
    tier.set('big', body(90));
    assert.equal(tier.bytes, 90);
    for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal(tier.get(id), undefined, id);
  });

  it('refuses a body larger than its object limit, which never exceeds the byte limit', () => {
    const tier = new MemoryTier(100, 30);
    assert.equal(tier.accepts(30), true);
    assert.equal(tier.accepts(31), false);
    tier.set('a', body(31));
    assert.equal(tier.get('a'), undefined);
    assert.equal(tier.bytes, 0);
    assert.equal(new MemoryTier(10, 1000).maxObjectSize, 10);
  });

  it('counts a body set twice under one id once', () => {
    const tier = new MemoryTier(100, 100);
    tier.set('a', body(10));
    tier.set('a', body(10));
    assert.equal(tier.bytes, 10);
  });

  it('delete frees the bytes and is harmless for unknown ids', () => {
    const tier = new MemoryTier(100, 100);
    tier.set('a', body(10));
    tier.delete('a');
    tier.delete('a');
    tier.delete('never');
    assert.equal(tier.bytes, 0);
    assert.equal(tier.get('a'), undefined);
  });

  it('never holds more bytes than its limit', () => {
    const tier = new MemoryTier(1000, 300);
    for (let i = 0; i < 500; i++) {
      tier.set(`id-${i}`, body((i * 37) % 300));
      assert.ok(tier.bytes <= 1000);
    }
  });
});
