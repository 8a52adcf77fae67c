import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../../src/security/site-guard.ts';

describe('RateLimiter keys', () => {
  it('keeps a header value of any length as a short key: 100,000 keys stay small', () => {
    const limiter = new RateLimiter('requests', 1, 2, 'header:X-Api-Key');
    assert.equal(limiter.key('192.0.2.1', { 'x-api-key': 'team-42' }), 'h:team-42');
    const long = `key-${'k'.repeat(16 * 1024)}`;
    const key = limiter.key('192.0.2.1', { 'x-api-key': long });
    assert.ok(key.length <= 64, `a 16 KiB value is keyed by ${key.length} characters`);
    assert.equal(limiter.key('198.51.100.7', { 'x-api-key': long }), key, 'one value, one bucket');
    assert.notEqual(limiter.key('192.0.2.1', { 'x-api-key': `${long.slice(0, -1)}j` }), key);
    assert.equal(limiter.key('192.0.2.1', {}), '192.0.2.1', 'the address when the header is absent');
  });
});
