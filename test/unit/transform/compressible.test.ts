import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compressible, compressibleType } from '../../../src/transform/compressible.ts';

const ok = {
  status: 200,
  contentType: 'text/html; charset=utf-8',
  contentEncoding: undefined,
  cacheControl: undefined,
};

describe('compressibleType', () => {
  it('follows the mime-db compressible flag, with text/* and +json/+xml as fallbacks', () => {
    assert.equal(compressibleType('application/json'), true);
    assert.equal(compressibleType('Application/JavaScript; charset=utf-8'), true);
    assert.equal(compressibleType('image/svg+xml'), true);
    assert.equal(compressibleType('image/png'), false);
    assert.equal(compressibleType('application/zip'), false);
    assert.equal(compressibleType('text/x-unknown'), true);
    assert.equal(compressibleType('application/vnd.example+json'), true);
    assert.equal(compressibleType(undefined), false);
  });

  it('adds configured types', () => {
    assert.equal(compressibleType('application/x-strata-log'), false);
    assert.equal(compressibleType('application/x-strata-log', ['application/x-strata-log']), true);
  });

  it('takes a configured type that mime-db marks not compressible (the operator asked for it)', () => {
    assert.equal(compressibleType('application/x-mpegurl'), false);
    assert.equal(compressibleType('application/x-mpegURL', ['application/x-mpegurl']), true);
    assert.equal(compressibleType('application/msword', ['application/msword']), true);
  });

  it('reads * in a configured subtype as any run of characters, within the subtype only', () => {
    const extra = ['application/vnd.ms-*', 'font/*', 'application/x-*+log'];
    assert.equal(compressibleType('application/vnd.ms-excel', extra), true);
    assert.equal(compressibleType('application/vnd.ms-', extra), true);
    assert.equal(compressibleType('Font/TTF; charset=binary', extra), true);
    assert.equal(compressibleType('application/x-app+log', extra), true);
    assert.equal(compressibleType('application/x-app+logs', extra), false);
    assert.equal(compressibleType('application/vnd.msword', extra), false);
    assert.equal(compressibleType('application/zip', extra), false);
    assert.equal(compressibleType('image/png', ['image/*']), true);
    // A dot is a dot, not any character.
    assert.equal(compressibleType('application/vndxms-excel', extra), false);
  });
});

describe('compressible', () => {
  it('takes an identity 200 of a compressible type', () => {
    assert.equal(compressible(ok), true);
    assert.equal(compressible({ ...ok, contentEncoding: 'identity' }), true);
  });

  it('refuses another status, an encoded body and no-transform (RFC 9110 §7.7)', () => {
    assert.equal(compressible({ ...ok, status: 206 }), false);
    assert.equal(compressible({ ...ok, status: 404 }), false);
    assert.equal(compressible({ ...ok, contentEncoding: 'gzip' }), false);
    assert.equal(compressible({ ...ok, cacheControl: 'max-age=60, no-transform' }), false);
    assert.equal(compressible({ ...ok, cacheControl: 'No-Transform' }), false);
    assert.equal(compressible({ ...ok, cacheControl: 'max-age=60, x-no-transformer' }), true);
  });
});
