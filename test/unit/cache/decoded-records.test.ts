import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DecodedRecord, DecodedRecords, decodedCost } from '../../../src/cache/decoded-records.ts';
import type { StoredValue } from '../../../src/cache/record.ts';

const VALUE = { kind: 'vary', v: 1, fields: ['accept-encoding'] } as unknown as StoredValue;

function record(bytes: number): DecodedRecord {
  return { bytes: Buffer.alloc(bytes, 1), value: VALUE, seen: 0 };
}

describe('decoded records', () => {
  it('holds no more than its bound in bytes, whatever arrives', () => {
    const maxBytes = 1024 * 1024;
    const records = new DecodedRecords(maxBytes, 50_000);
    let most = 0;
    for (let i = 0; i < 2_000; i++) {
      records.set(`https://shop.example.com/catalog/item/${i}?variant=${i % 7}`, record(8_000 + (i % 13)));
      most = Math.max(most, records.bytes);
    }
    assert.ok(most <= maxBytes, `held ${most} bytes, bound ${maxBytes}`);
    const cost = decodedCost(record(8_000));
    assert.ok(
      records.size >= Math.floor(maxBytes / 2 / cost),
      `kept ${records.size}: at least half the bound`,
    );
    assert.ok(records.size <= Math.floor(maxBytes / cost), `kept ${records.size}`);
  });

  it('holds no more than its bound in records', () => {
    const records = new DecodedRecords(1 << 30, 100);
    for (let i = 0; i < 1_000; i++) records.set(`k${i}`, record(10));
    assert.ok(records.size <= 100, `kept ${records.size}`);
    assert.ok(records.size >= 50);
  });

  it('keeps a record read between arrivals, and drops one never read again', () => {
    const records = new DecodedRecords(64 * decodedCost(record(1_000)), 50_000);
    const hot = record(1_000);
    records.set('hot', hot);
    records.set('cold', record(1_000));
    for (let i = 0; i < 5_000; i++) {
      records.set(`passing-${i}`, record(1_000));
      assert.equal(records.get('hot'), hot, `the hot record is still kept after ${i + 1} arrivals`);
    }
    assert.equal(records.get('cold'), undefined);
  });

  it('counts a replaced record once and a removed one not at all', () => {
    const records = new DecodedRecords();
    records.set('a', record(100));
    records.set('a', record(300));
    assert.equal(records.bytes, decodedCost(record(300)));
    assert.equal(records.size, 1);
    records.set('b', record(50));
    records.delete('a');
    records.delete('missing');
    assert.equal(records.bytes, decodedCost(record(50)));
    assert.equal(records.get('a'), undefined);
    records.delete('b');
    assert.equal(records.bytes, 0);
    assert.equal(records.size, 0);
  });

  it('counts a record moved back from the old generation once', () => {
    const cost = decodedCost(record(100));
    const records = new DecodedRecords(4 * cost, 50_000);
    records.set('a', record(100));
    records.set('b', record(100));
    records.set('c', record(100)); // the young generation was full: a and b are now old
    assert.ok(records.get('a') !== undefined);
    assert.equal(records.size, 3);
    assert.equal(records.bytes, 3 * cost);
  });

  it('does not keep a record larger than half its bound', () => {
    const records = new DecodedRecords(10_000, 50_000);
    records.set('huge', record(20_000));
    assert.equal(records.get('huge'), undefined);
    assert.equal(records.bytes, 0);
  });
});
