import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { checkRequestTarget } from '../../../src/http/request-target.ts';

/** What checkRequestTarget reads of a request: method, target and the raw header list. */
function request(method: string, url: string, rawHeaders: string[]): IncomingMessage {
  return { method, url, rawHeaders } as unknown as IncomingMessage;
}

function check(url: string, rawHeaders: string[], method = 'GET') {
  return checkRequestTarget(request(method, url, rawHeaders));
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
      host: 'Example.COM:8080',
      path: '/',
    });
    assert.deepEqual(check('/', ['HOST', '[::1]:8080']), { ok: true, host: '[::1]:8080', path: '/' });
    assert.deepEqual(check('/', ['Host', '10.0.0.1']), { ok: true, host: '10.0.0.1', path: '/' });
  });

  it('refuses a request without Host', () => {
    assert.deepEqual(check('/', ['Accept', '*/*']), { ok: false, reason: 'missing Host header' });
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
