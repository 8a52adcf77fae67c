import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatListen, parseDuration, parseListen, parseSize } from '../../../src/config/units.ts';

describe('parseSize', () => {
  it('reads binary and decimal units, case-insensitively, with optional spaces', () => {
    assert.equal(parseSize('4GiB'), 4 * 1024 ** 3);
    assert.equal(parseSize('256 MiB'), 256 * 1024 ** 2);
    assert.equal(parseSize('1kb'), 1000);
    assert.equal(parseSize('1K'), 1024);
    assert.equal(parseSize('2TB'), 2 * 1000 ** 4);
    assert.equal(parseSize('1.5 KiB'), 1536);
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize('512b'), 512);
  });

  it('accepts non-negative finite numbers of bytes, rounded down', () => {
    assert.equal(parseSize(1048576), 1048576);
    assert.equal(parseSize(10.9), 10);
    assert.equal(parseSize(0), 0);
  });

  it('refuses unknown units, negatives and junk', () => {
    for (const value of [
      '4XB',
      '-1',
      '1 GiB extra',
      'GiB',
      '',
      '1e6',
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ]) {
      assert.equal(parseSize(value), undefined, String(value));
    }
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h and d; a bare number is milliseconds', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration(' 100 '), 100);
    assert.equal(parseDuration(5000), 5000);
  });

  it('refuses unknown units, negatives and junk', () => {
    for (const value of ['5 years', '-1s', 's', '', '1w', -5, Number.NaN]) {
      assert.equal(parseDuration(value), undefined, String(value));
    }
  });
});

describe('parseListen', () => {
  it('reads IPv4, bracketed IPv6, host names and a bare port', () => {
    assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseListen('[::1]:443'), { host: '::1', port: 443 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseListen(':9091'), { host: '0.0.0.0', port: 9091 });
  });

  it('refuses a missing or out-of-range port and an unbracketed IPv6 address', () => {
    for (const value of ['127.0.0.1', '127.0.0.1:', 'host:65536', 'host:123456', '::1:80', '8080']) {
      assert.equal(parseListen(value), undefined, value);
    }
  });

  it('regression: a host with spaces, a scheme or a bad IPv6 address is refused at validation, not at bind', () => {
    for (const value of ['a b:80', 'http://x:80', 'x/y:80', '[1::2::3]:80', '[:::]:80']) {
      assert.equal(parseListen(value), undefined, value);
    }
  });

  it('formatListen brackets IPv6 hosts', () => {
    assert.equal(formatListen({ host: '::1', port: 80 }), '[::1]:80');
    assert.equal(formatListen({ host: '0.0.0.0', port: 80 }), '0.0.0.0:80');
  });
});
