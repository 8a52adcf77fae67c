import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  normalizeAuthority,
  primaryKey,
  storageKey,
  variantKey,
  variantRange,
} from '../../../src/cache/key.ts';

/** LMDB refuses keys longer than this many bytes. */
const LMDB_MAX_KEY_BYTES = 1978;

describe('primaryKey', () => {
  it('lower-cases the authority and drops the default port of the scheme', () => {
    assert.equal(primaryKey('http', 'Example.COM:80', '/a', false), 'http://example.com/a');
    assert.equal(primaryKey('https', 'example.com:443', '/a', false), 'https://example.com/a');
    assert.equal(primaryKey('http', '[::1]:80', '/', false), 'http://[::1]/');
  });

  it('keeps a port that is not the default of the scheme', () => {
    assert.equal(normalizeAuthority('http', 'example.com:443'), 'example.com:443');
    assert.equal(normalizeAuthority('https', 'example.com:80'), 'example.com:80');
    assert.equal(normalizeAuthority('http', 'example.com:8080'), 'example.com:8080');
    assert.equal(normalizeAuthority('http', 'example.com:180'), 'example.com:180');
  });

  it('keeps the path and query exactly as received (case and percent-encoding are significant)', () => {
    assert.equal(primaryKey('http', 'h', '/A/%7e?b=2&a=1', false), 'http://h/A/%7e?b=2&a=1');
    assert.notEqual(primaryKey('http', 'h', '/a', false), primaryKey('http', 'h', '/A', false));
  });

  it('sorts query parameters when the site asks, dropping empty ones', () => {
    assert.equal(primaryKey('http', 'h', '/p?b=2&a=1&&c', true), 'http://h/p?a=1&b=2&c');
    assert.equal(primaryKey('http', 'h', '/p?b=2&a=1', true), primaryKey('http', 'h', '/p?a=1&b=2', true));
    assert.equal(primaryKey('http', 'h', '/p', true), 'http://h/p');
    // A repeated name keeps its values' order: an origin taking the first answers these apart.
    const long = `/catalogue/${'search-results-'.repeat(6)}list`;
    assert.equal(
      primaryKey('http', 'h', `${long}?page=6&a=1&page=2`, true),
      `http://h${long}?a=1&page=6&page=2`,
    );
    assert.notEqual(
      primaryKey('http', 'h', `${long}?page=6&page=2`, true),
      primaryKey('http', 'h', `${long}?page=2&page=6`, true),
    );
    // Different names in the order keys always had (whole strings: `a-b=` before `a=`).
    assert.equal(primaryKey('http', 'h', '/p?a=1&a-b=2', true), 'http://h/p?a-b=2&a=1');
  });

  it('tells the schemes apart', () => {
    assert.notEqual(primaryKey('http', 'h', '/', false), primaryKey('https', 'h', '/', false));
  });
});

describe('storageKey', () => {
  it('keeps a short key as it is', () => {
    const key = primaryKey('http', 'example.com', '/a', false);
    assert.equal(storageKey(key), key);
  });

  it('hashes a long key below the LMDB limit, its variant keys included, keeping a readable prefix', () => {
    const key = primaryKey('http', 'example.com', `/${'x'.repeat(5000)}`, false);
    const stored = storageKey(key);
    assert.ok(stored.startsWith('http://example.com/xxxx'));
    assert.ok(Buffer.byteLength(stored) < LMDB_MAX_KEY_BYTES);
    assert.ok(Buffer.byteLength(variantKey(stored, 'accept-encoding=gzip\n')) < LMDB_MAX_KEY_BYTES);
    assert.ok(Buffer.byteLength(variantRange(stored).end) < LMDB_MAX_KEY_BYTES);
  });

  it('keeps keys of non-ASCII characters under the LMDB limit in bytes, not only in characters', () => {
    // Node gives request targets as latin1: a byte over 0x7f is one character, two UTF-8 bytes.
    for (const length of [400, 900, 999, 1000, 2000]) {
      const key = primaryKey('http', 'example.com', `/${'\u00e9'.repeat(length)}`, false);
      const stored = storageKey(key);
      assert.ok(Buffer.byteLength(stored) <= 1000, `${length}: ${Buffer.byteLength(stored)} bytes`);
      assert.ok(Buffer.byteLength(variantKey(stored, 'accept-encoding=gzip\n')) < LMDB_MAX_KEY_BYTES);
    }
  });

  it('gives two long keys with the same prefix different storage keys', () => {
    const prefix = `http://h/${'p'.repeat(3000)}`;
    assert.notEqual(storageKey(`${prefix}?a=1`), storageKey(`${prefix}?a=2`));
    assert.equal(storageKey(`${prefix}?a=1`), storageKey(`${prefix}?a=1`));
  });
});

describe('variantKey and variantRange', () => {
  it('a response without Vary is stored under the storage key itself', () => {
    assert.equal(variantKey('http://h/a', ''), 'http://h/a');
  });

  it('different secondary keys give different variant keys, the same one the same key', () => {
    const a = variantKey('http://h/a', 'accept-encoding=gzip\n');
    assert.notEqual(a, variantKey('http://h/a', 'accept-encoding=br\n'));
    assert.equal(a, variantKey('http://h/a', 'accept-encoding=gzip\n'));
  });

  it('the range holds every variant of its key and none of a longer key sharing the prefix', () => {
    const { start, end } = variantRange('http://h/a');
    const inside = ['x', 'y', 'z'].map((value) => variantKey('http://h/a', `x-v=${value}\n`));
    for (const key of inside) assert.ok(key >= start && key < end, key);
    const outside = [
      'http://h/a',
      'http://h/ab',
      'http://h/a/b',
      'http://h/a?q',
      variantKey('http://h/ab', 'x-v=x\n'),
      variantKey('http://h/a/b', 'x-v=x\n'),
    ];
    for (const key of outside) assert.ok(!(key >= start && key < end), key);
  });
});

describe('variantKey', () => {
  it('names a variant by a digest of its secondary key: the same every time, distinct per key, long keys included', () => {
    const storage = `https://shop.example/catalogue/${'x'.repeat(90)}`;
    const keys = ['gzip', 'br', 'identity', `de-DE${'-'.repeat(300)}`, 'fr-FR'];
    const first = keys.map((key) => variantKey(storage, key));
    // Beyond the digest cache's bound: digests of thousands of made-up keys, then the same again.
    for (let i = 0; i < 5000; i++) variantKey(storage, `lang-${i}`);
    assert.deepEqual(
      keys.map((key) => variantKey(storage, key)),
      first,
    );
    assert.equal(new Set(first).size, keys.length);
    assert.equal(variantKey(storage, ''), storage);
    assert.equal(
      variantKey(storage, 'gzip'),
      `${storage}\u001f${createHash('sha256').update('gzip').digest('base64url').slice(0, 22)}`,
    );
  });
});
