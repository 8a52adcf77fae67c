import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { writeFailure } from '../../../src/cache/write-failure.ts';

describe('writeFailure', () => {
  const roomy = tmpdir();

  it('tells a damaged file from a full disk, and says what to do about it', () => {
    const damaged = writeFailure(new Error('MDB_CORRUPTED: Located page was wrong type'), roomy);
    assert.match(damaged, /^the cache file is damaged \(MDB_CORRUPTED: Located page was wrong type\)/);
    assert.match(damaged, /move the cache directory aside/);
    assert.match(writeFailure(new Error('MDB_PAGE_NOTFOUND: Requested page not found'), roomy), /damaged/);
  });

  it('names a full disk or map, and passes any other reason on as it came', () => {
    assert.equal(writeFailure(new Error('ENOSPC: no space left on device'), roomy), 'disk full');
    assert.equal(
      writeFailure(new Error('MDB_MAP_FULL: Environment mapsize limit reached'), roomy),
      'LMDB map full',
    );
    assert.equal(writeFailure(new Error('Input/output error'), roomy), 'Input/output error');
    assert.equal(writeFailure('EACCES', '/nonexistent/strata-cache'), 'EACCES');
  });
});
