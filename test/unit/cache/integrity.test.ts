import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { intact, recordSum, sealRecord } from '../../../src/cache/integrity.ts';
import type { EntryRecord } from '../../../src/cache/record.ts';
import { entryRecord } from '../../helpers/records.ts';

const URL = `https://shop.example.com/catalogue/2026/winter/${'collection-'.repeat(8)}item?colour=blue&size=42`;

function fresh(): EntryRecord {
  return entryRecord({
    url: URL,
    bodyId: 'mh9x.ab12.3f',
    lifetime: 300,
    headers: ['content-type', 'text/html', 'etag', '"v1"', 'cache-control', 'max-age=300'],
  });
}

describe('sealing records', () => {
  it('seals a new record with the sum of its fields, the sum last, and the record itself untouched', () => {
    const record = fresh();
    const before = JSON.stringify(record);
    const sealed = sealRecord(record);
    assert.equal(JSON.stringify(record), before);
    assert.equal(sealed.sum, recordSum(record));
    assert.deepEqual(Object.keys(sealed), [...Object.keys(record), 'sum']);
    assert.ok(intact(sealed));
  });

  it('replaces the sum of a sealed record that changed, wherever the old sum stood', () => {
    const sealed = sealRecord(fresh());
    const changed = { ...sealed, invalidated: true };
    assert.equal(intact(changed), false, 'a changed field no longer matches the old sum');
    const resealed = sealRecord(changed);
    assert.ok(intact(resealed));
    assert.deepEqual(Object.keys(resealed), [...Object.keys(changed).filter((key) => key !== 'sum'), 'sum']);
    assert.notEqual(resealed.sum, sealed.sum);
    // Sealing twice gives the same record.
    assert.deepEqual(sealRecord(resealed), resealed);
  });

  it('finds a record whose fields were altered after sealing damaged', () => {
    const sealed = sealRecord(fresh());
    assert.equal(intact({ ...sealed, status: 203 }), false);
    assert.equal(intact({ ...sealed, url: `${URL}x` }), false);
    assert.equal(intact({ ...sealed, headers: [...sealed.headers, 'x-extra', '1'] }), false);
  });
});
