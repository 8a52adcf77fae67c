import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import {
  canonicalAuthority,
  canonicalTarget,
  checkRequestTarget,
  expectsOnlyContinue,
} from '../../../src/http/request-target.ts';

/** What checkRequestTarget reads of a request: version, method, target and the raw header list. */
function request(method: string, url: string, rawHeaders: string[], minor = 1, major = 1): IncomingMessage {
  return {
    method,
    url,
    rawHeaders,
    httpVersionMajor: major,
    httpVersionMinor: minor,
  } as unknown as IncomingMessage;
}

/** The verdict, without the error code for refusals (checked by the tests that need it). */
function check(url: string, rawHeaders: string[], method = 'GET') {
  const verdict = checkRequestTarget(request(method, url, rawHeaders));
  if (verdict.ok) return verdict;
  return { ok: false, reason: verdict.reason };
}

describe('checkRequestTarget', () => {
  it('accepts an origin-form target with one valid Host', () => {
    assert.deepEqual(check('/a?b=1', ['Host', 'example.com']), {
      ok: true,
      host: 'example.com',
      path: '/a?b=1',
    });
    assert.deepEqual(check('/', ['host', 'Example.COM:8080']), {
      ok: true,
      host: 'example.com:8080',
      path: '/',
    });
    assert.deepEqual(check('/', ['HOST', '[::1]:8080']), { ok: true, host: '[::1]:8080', path: '/' });
    assert.deepEqual(check('/', ['Host', '10.0.0.1']), { ok: true, host: '10.0.0.1', path: '/' });
  });

  it('refuses an HTTP/1.1 request without Host', () => {
    assert.deepEqual(check('/', ['Accept', '*/*']), { ok: false, reason: 'missing Host header' });
  });

  it('gives an HTTP/1.0 request without Host the address it reached, or its absolute-form authority', () => {
    const at = (url: string, localAddress: string | undefined, localPort = 8080) =>
      checkRequestTarget(
        Object.assign(request('GET', url, ['Accept', '*/*'], 0), { socket: { localAddress, localPort } }),
      );
    assert.deepEqual(at('/a', '127.0.0.1'), { ok: true, host: '127.0.0.1:8080', path: '/a' });
    assert.deepEqual(at('/a', '::ffff:10.1.2.3', 80), { ok: true, host: '10.1.2.3', path: '/a' });
    assert.deepEqual(at('/a', '::1'), { ok: true, host: '[::1]:8080', path: '/a' });
    assert.deepEqual(at('http://Shop.Example/b?c', '127.0.0.1'), {
      ok: true,
      host: 'shop.example',
      path: '/b?c',
    });
    assert.deepEqual(at('/a', undefined), {
      ok: false,
      code: 'EDGE_ERR_CLIENT_BAD_REQUEST',
      reason: 'missing Host header',
    });
  });

  it('refuses two Host headers, even when they agree', () => {
    for (const second of ['example.com', 'other.example']) {
      assert.deepEqual(check('/', ['Host', 'example.com', 'host', second]), {
        ok: false,
        reason: 'more than one Host header',
      });
    }
  });

  it('refuses an invalid Host', () => {
    for (const host of [
      '',
      'exa mple.com',
      'example.com/path',
      'user@example.com',
      'example.com:port',
      'example.com:99999',
      '-example.com',
      'example.com:',
      '[::1',
      'example.com, other.example',
    ]) {
      assert.deepEqual(check('/', ['Host', host]), { ok: false, reason: 'invalid Host header' }, host);
    }
  });

  it('accepts an absolute-form target whose authority matches Host, case-insensitively', () => {
    assert.deepEqual(check('http://Example.com/a?b', ['Host', 'example.com']), {
      ok: true,
      host: 'example.com',
      path: '/a?b',
    });
    assert.deepEqual(check('http://example.com', ['Host', 'example.com']), {
      ok: true,
      host: 'example.com',
      path: '/',
    });
  });

  it('refuses an absolute-form target whose authority disagrees with Host', () => {
    for (const target of ['http://evil.example/', 'http://example.com:8080/', 'https://example.com.evil/']) {
      assert.deepEqual(check(target, ['Host', 'example.com']), {
        ok: false,
        reason: 'absolute-form target disagrees with Host',
      });
    }
  });

  it('refuses userinfo in an absolute-form target', () => {
    assert.deepEqual(check('http://user:pass@example.com/', ['Host', 'example.com']), {
      ok: false,
      reason: 'userinfo in request target',
    });
    assert.deepEqual(check('http://user@example.com/', ['Host', 'user@example.com']), {
      ok: false,
      reason: 'invalid Host header',
    });
  });

  it('accepts * only with OPTIONS', () => {
    assert.deepEqual(check('*', ['Host', 'example.com'], 'OPTIONS'), {
      ok: true,
      host: 'example.com',
      path: '*',
    });
    for (const method of ['GET', 'HEAD', 'POST']) {
      assert.deepEqual(check('*', ['Host', 'example.com'], method), {
        ok: false,
        reason: 'asterisk-form target outside OPTIONS',
      });
    }
  });

  it('refuses other target forms', () => {
    for (const target of ['example.com:443', 'ftp://example.com/', 'a/b', '']) {
      assert.equal(check(target, ['Host', 'example.com']).ok, false, target);
    }
  });
});

describe('absolute-form targets and default ports', () => {
  it('accepts an absolute-form target that names the default port Host leaves out', () => {
    assert.deepEqual(check('http://example.com:80/a?b', ['Host', 'example.com']), {
      ok: true,
      host: 'example.com',
      path: '/a?b',
    });
    assert.equal(check('http://example.com/a', ['Host', 'example.com:80']).ok, true);
  });

  it('still refuses a target whose port differs from Host', () => {
    assert.equal(check('http://example.com:8080/a', ['Host', 'example.com']).ok, false);
  });
});

describe('one canonical authority and target', () => {
  it('spells every equivalent authority the same way', () => {
    for (const host of [
      'shop.example',
      'Shop.Example',
      'shop.example.',
      'shop.example:80',
      'shop.example:080',
    ]) {
      assert.equal(canonicalAuthority(host, 'http'), 'shop.example', host);
    }
    assert.equal(canonicalAuthority('shop.example:443', 'https'), 'shop.example');
    assert.equal(canonicalAuthority('shop.example:443', 'http'), 'shop.example:443');
    assert.equal(canonicalAuthority('shop.example:08080', 'http'), 'shop.example:8080');
    assert.equal(canonicalAuthority('[::1]:80', 'http'), '[::1]');
    assert.equal(canonicalAuthority('bad host', 'http'), undefined);
  });

  it('drops a fragment and an empty query from the target', () => {
    const long = `/catalogue/${'x'.repeat(120)}`;
    assert.equal(canonicalTarget(`${long}#section`), long);
    assert.equal(canonicalTarget(`${long}?`), long);
    assert.equal(canonicalTarget(`${long}?#a`), long);
    assert.equal(canonicalTarget(`${long}?a=1`), `${long}?a=1`);
    assert.equal(canonicalTarget(`${long}?a=?`), `${long}?a=?`);
  });

  it('normalizes the path as RFC 3986 §6.2.2 does: unreserved escapes decoded, dot segments removed', () => {
    const long = `/catalogue/${'x'.repeat(120)}`;
    const cases: [string, string][] = [
      ['/static/../account', '/account'],
      ['/x/../wp-admin', '/wp-admin'],
      ['/./wp-admin', '/wp-admin'],
      ['/%77p-admin', '/wp-admin'],
      ['/wp%2Dadmin', '/wp-admin'],
      ['/x/%2e%2e/wp-admin', '/wp-admin'],
      ['/a%2fb%3f', '/a%2Fb%3F'],
      ['/a/.', '/a/'],
      ['/a/b/..', '/a/'],
      ['/..', '/'],
      ['/../../etc/passwd', '/etc/passwd'],
      ['//x', '//x'],
      ['/a/.hidden/..b', '/a/.hidden/..b'],
      ['/a%zz', '/a%zz'],
      [`${long}/./page?next=/../x&q=%77`, `${long}/page?next=/../x&q=%77`],
      [`${long}/%7Euser/`, `${long}/~user/`],
    ];
    for (const [target, canonical] of cases) assert.equal(canonicalTarget(target), canonical, target);
    assert.equal(canonicalTarget(long), long);
  });

  it('compares an absolute-form authority with Host in canonical form', () => {
    assert.deepEqual(check('http://shop.example.:080/a?', ['Host', 'SHOP.example']), {
      ok: true,
      host: 'shop.example',
      path: '/a',
    });
  });
});

describe('version, method and framing', () => {
  it('refuses a request line of another HTTP version with 505', () => {
    const verdict = checkRequestTarget(request('GET', '/', ['Host', 'a.example'], 0, 2));
    assert.equal(verdict.ok, false);
    assert.equal(!verdict.ok && verdict.code, 'EDGE_ERR_CLIENT_VERSION');
  });

  it('refuses CONNECT and TRACE with 405', () => {
    for (const method of ['TRACE', 'CONNECT']) {
      const verdict = checkRequestTarget(request(method, '/', ['Host', 'a.example']));
      assert.equal(!verdict.ok && verdict.code, 'EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED', method);
    }
  });

  it('accepts chunked alone, refuses other codings with 501 and any coding in HTTP/1.0', () => {
    const te = (value: string, minor = 1) =>
      checkRequestTarget(request('POST', '/', ['Host', 'a.example', 'Transfer-Encoding', value], minor));
    assert.equal(te('chunked').ok, true);
    assert.equal(te('Chunked ').ok, true);
    for (const value of ['gzip, chunked', 'identity', 'chunked, chunked']) {
      const verdict = te(value);
      assert.equal(!verdict.ok && verdict.code, 'EDGE_ERR_CLIENT_TRANSFER_CODING', value);
    }
    const old = te('chunked', 0);
    assert.equal(!old.ok && old.code, 'EDGE_ERR_CLIENT_BAD_REQUEST');
  });
});

describe('expectsOnlyContinue', () => {
  // node:http waits for a 100 on any value matching /(?:^|\W)100-continue(?:$|\W)/i: whatever
  // passes here must match it too, so a request accepted is always one node:http reads as waiting.
  const nodeWaits = (value: string) => /(?:^|\W)100-continue(?:$|\W)/i.test(value);

  for (const value of [
    '100-continue',
    '100-Continue',
    ' 100-continue ',
    '100-continue,100-continue',
    '100-continue, ',
  ]) {
    it(`reads ${JSON.stringify(value)} as 100-continue alone`, () => {
      assert.equal(expectsOnlyContinue(value), true);
      assert.equal(nodeWaits(value), true);
    });
  }

  for (const value of ['100-continue, foo', 'foo,100-continue', '100-continue=1', 'telepathy', '', ' , ']) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      assert.equal(expectsOnlyContinue(value), false);
    });
  }

  it('refuses an HTTP/1.1 request whose Expect names 100-continue among other members, 417', () => {
    const verdict = checkRequestTarget(
      request('POST', '/upload', ['Host', 'example.com', 'Expect', '100-continue, foo']),
    );
    assert.equal(!verdict.ok && verdict.code, 'EDGE_ERR_CLIENT_EXPECTATION');
  });

  it('accepts two Expect: 100-continue fields as one expectation', () => {
    const verdict = checkRequestTarget(
      request('POST', '/upload', ['Host', 'example.com', 'Expect', '100-continue', 'expect', '100-continue']),
    );
    assert.equal(verdict.ok, true);
  });
});
