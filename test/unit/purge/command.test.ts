import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describePurge, hostKey, parsePurgeBody, parsePurgeText } from '../../../src/purge/command.ts';
import { hostPrefixes, keyOfPrefix, keyOfUrl } from '../../../src/purge/targets.ts';

describe('purge commands', () => {
  it('fills in defaults and keeps what was given', () => {
    const parsed = parsePurgeBody({ tags: ['a'], soft: true });
    assert.deepEqual(parsed, {
      ok: true,
      command: { urls: [], prefixes: [], tags: ['a'], all: false, soft: true },
      forwarded: undefined,
    });
  });

  it('explains what is wrong with a body', () => {
    const reason = (body: unknown) => {
      const parsed = parsePurgeBody(body);
      return parsed.ok ? '' : parsed.reason;
    };
    assert.match(reason(null), /JSON object/);
    assert.match(reason({ urls: [''] }), /non-empty strings/);
    assert.match(reason({ tags: ['x'.repeat(257)] }), /longer than 256/);
    assert.match(reason({ urls: Array(10_001).fill('http://a/') }), /at most 10000/);
    assert.match(reason({ all: true, forwarded: { node: 'n' } }), /forwarded must be/);
    const forwarded = { node: 'n', sequence: 3, path: ['n'] };
    assert.match(
      reason({ all: true, forwarded: { ...forwarded, origin: { node: 'a b', sequence: 1 } } }),
      /origin/,
    );
    assert.match(
      reason({ all: true, forwarded: { ...forwarded, origin: { node: 'a', sequence: 0 } } }),
      /origin/,
    );
    const withOrigin = parsePurgeBody({
      all: true,
      forwarded: { ...forwarded, origin: { node: 'stream:p', sequence: 9 } },
    });
    assert.ok(withOrigin.ok);
    assert.deepEqual(withOrigin.forwarded, { ...forwarded, origin: { node: 'stream:p', sequence: 9 } });
    const text = parsePurgeText('{');
    assert.equal(text.ok, false);
  });

  it('takes hosts only when given, so a command without them keeps its old shape', () => {
    const parsed = parsePurgeBody({ hosts: ['Shop.Example.:8080'] });
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.command.hosts, ['Shop.Example.:8080']);
    assert.deepEqual(hostKey('Shop.Example.:8080'), { name: 'shop.example', port: 8080 });
    assert.deepEqual(hostKey('shop.example'), { name: 'shop.example', port: undefined });
    assert.equal(hostKey('http://shop.example'), undefined);
    assert.equal(hostKey('shop.example/a'), undefined);
    const old = parsePurgeBody({ tags: ['a'] });
    assert.ok(old.ok);
    assert.equal('hosts' in old.command, false);
    assert.deepEqual(hostPrefixes({ name: 'h.test', port: 443 }), ['http://h.test:443/', 'https://h.test/']);
    assert.deepEqual(hostPrefixes({ name: 'h.test', port: undefined }), [
      'http://h.test/',
      'https://h.test/',
      'http://h.test:',
      'https://h.test:',
    ]);
  });

  it('names a purge in one line', () => {
    assert.equal(
      describePurge({ urls: ['a', 'b'], prefixes: [], tags: ['t'], all: false, soft: true }),
      'soft purge of 2 urls, 1 tag',
    );
  });
});

describe('purge targets', () => {
  it('maps an absolute URL to the primary key the hash phase computes', () => {
    const none = () => false;
    assert.equal(keyOfUrl('http://Example.COM:80/a/b?x=1#top', none), 'http://example.com/a/b?x=1');
    assert.equal(keyOfUrl('https://example.com:443', none), 'https://example.com/');
    assert.equal(keyOfUrl('https://example.com?q', none), 'https://example.com/?q');
    // RFC 3986 §6.2.2: an escaped unreserved character is that character (as a request's path).
    assert.equal(keyOfUrl('https://example.com:8443/%7Ex', none), 'https://example.com:8443/~x');
    // Spelled as the receive phase spells a request: trailing dot, `:080`, bare `?` (regression:
    // a purge written so matched no key the requests had made).
    assert.equal(keyOfUrl('http://Shop.Example.:080/canonical?', none), 'http://shop.example/canonical');
    assert.equal(keyOfPrefix('http://shop.example.:080/img/'), 'http://shop.example/img/');
    assert.equal(
      keyOfUrl('http://s.test/q?b=2&a=1', () => true),
      'http://s.test/q?a=1&b=2',
    );
    assert.equal(keyOfUrl('/relative', none), undefined);
  });

  it('normalizes only the scheme and authority of a prefix', () => {
    assert.equal(keyOfPrefix('HTTPS://Example.com:443/Img/2024-'), 'https://example.com/Img/2024-');
    assert.equal(keyOfPrefix('example.com/'), undefined);
    assert.equal(keyOfPrefix('https://Example.com'), 'https://example.com/', 'the host alone is its root');
    assert.equal(keyOfPrefix('https://example.com:8443'), 'https://example.com:8443/');
  });
});
