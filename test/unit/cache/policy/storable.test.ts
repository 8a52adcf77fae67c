import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeaderMap } from '../../../../src/cache/policy/semantics.ts';
import {
  decideStorable,
  type NotStorableReason,
  responseDirectives,
  type StorableVerdict,
} from '../../../../src/cache/policy/storable.ts';

const DATE = 'Thu, 01 Jan 2026 12:00:00 GMT';

function decide(
  responseHeaders: HeaderMap,
  options: { status?: number; method?: string; request?: HeaderMap } = {},
): StorableVerdict {
  const headers = { date: DATE, ...responseHeaders };
  return decideStorable({
    method: options.method ?? 'GET',
    requestHeaders: options.request ?? {},
    status: options.status ?? 200,
    responseHeaders: headers,
    response: responseDirectives(headers, 'strata'),
    serverErrors: true,
  });
}

function refused(reason: NotStorableReason): StorableVerdict {
  return { storable: false, reason };
}

const STORED = { storable: true, stripFields: [], noCache: false };

describe('decideStorable: why a response is not stored', () => {
  it('method: only GET responses are stored', () => {
    for (const method of ['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']) {
      assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { method }), refused('method'), method);
    }
  });

  it('request-no-store: a request with no-store', () => {
    const request = { 'cache-control': 'no-store' };
    assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { request }), refused('request-no-store'));
  });

  it('status: 1xx and 304 are not final stored responses', () => {
    for (const status of [100, 103, 304]) {
      assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status }), refused('status'));
    }
  });

  it('partial-content: 206', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status: 206 }), refused('partial-content'));
  });

  it('must-understand: with a status the cache does not understand', () => {
    assert.deepEqual(
      decide({ 'cache-control': 'must-understand, max-age=60' }, { status: 299 }),
      refused('must-understand'),
    );
    assert.deepEqual(decide({ 'cache-control': 'must-understand, max-age=60' }), STORED);
  });

  it('error-status: a client error not cacheable by default, even with explicit freshness', () => {
    for (const status of [400, 401, 403, 408, 409, 418, 422, 429, 451]) {
      assert.deepEqual(
        decide({ 'cache-control': 'max-age=60' }, { status }),
        refused('error-status'),
        String(status),
      );
    }
    for (const status of [404, 405, 410, 414]) {
      assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status }), STORED, String(status));
    }
  });

  it('error-status: a server error when cache.maxErrorTtl is 0', () => {
    const headers = { date: DATE, 'cache-control': 'max-age=60' };
    for (const status of [500, 501, 502, 503, 504]) {
      assert.deepEqual(
        decideStorable({
          method: 'GET',
          requestHeaders: {},
          status,
          responseHeaders: headers,
          response: responseDirectives(headers, 'strata'),
          serverErrors: false,
        }),
        refused('error-status'),
      );
      assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status }), STORED, String(status));
    }
  });

  it('no-store in the response', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, no-store' }), refused('no-store'));
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, NO-STORE' }), refused('no-store'));
  });

  it('private (unqualified)', () => {
    assert.deepEqual(decide({ 'cache-control': 'private, max-age=60' }), refused('private'));
  });

  it('authorization: a request with Authorization, unless public, s-maxage or must-revalidate (§3.5)', () => {
    const request = { authorization: 'Bearer x' };
    assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { request }), refused('authorization'));
    for (const allow of ['public, max-age=60', 's-maxage=60', 'max-age=60, must-revalidate']) {
      assert.equal(decide({ 'cache-control': allow }, { request }).storable, true, allow);
    }
  });

  it('set-cookie: a response setting a cookie, unless private="set-cookie" or no-cache="set-cookie"', () => {
    assert.deepEqual(
      decide({ 'cache-control': 'public, max-age=60', 'set-cookie': 'a=1' }),
      refused('set-cookie'),
    );
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, private="Set-Cookie"', 'set-cookie': 'a=1' }), {
      storable: true,
      stripFields: ['set-cookie'],
      noCache: false,
    });
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, no-cache="set-cookie"', 'set-cookie': 'a=1' }), {
      storable: true,
      stripFields: ['set-cookie'],
      noCache: false,
    });
  });

  it('vary-client: Vary naming X-Forwarded-For or Forwarded, which the node writes per client', () => {
    assert.deepEqual(
      decide({ 'cache-control': 'max-age=60', vary: 'X-Forwarded-For' }),
      refused('vary-client'),
    );
    assert.deepEqual(
      decide({ 'cache-control': 'max-age=60', vary: 'accept, FORWARDED' }),
      refused('vary-client'),
    );
    assert.equal(decide({ 'cache-control': 'max-age=60', vary: 'x-forwarded-host' }).storable, true);
  });

  it('vary-star: Vary containing *', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60', vary: 'accept, *' }), refused('vary-star'));
  });

  it('no-freshness: a status not cacheable by default, without explicit freshness or public', () => {
    assert.deepEqual(decide({}, { status: 302 }), refused('no-freshness'));
    assert.deepEqual(decide({}, { status: 500 }), refused('no-freshness'));
    assert.equal(decide({ 'cache-control': 'public' }, { status: 302 }).storable, true);
    assert.equal(decide({ expires: 'Thu, 01 Jan 2026 13:00:00 GMT' }, { status: 302 }).storable, true);
  });
});

describe('decideStorable: what is stored', () => {
  it('stores a heuristically cacheable status without explicit freshness', () => {
    assert.deepEqual(decide({ 'last-modified': 'Wed, 31 Dec 2025 12:00:00 GMT' }), STORED);
    assert.deepEqual(decide({}, { status: 404 }), STORED);
  });

  it('marks unqualified no-cache for validation on every reuse', () => {
    assert.deepEqual(decide({ 'cache-control': 'no-cache, max-age=60' }), {
      storable: true,
      stripFields: [],
      noCache: true,
    });
  });

  it('qualified no-cache and private list the fields to strip, lower case', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, no-cache="X-A, X-B", private="X-C"' }), {
      storable: true,
      stripFields: ['x-c', 'x-a', 'x-b'],
      noCache: false,
    });
  });

  it('ignores unknown directives', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60, foo-bar="x", baz' }), STORED);
  });

  it('CDN-Cache-Control decides over Cache-Control, in both directions', () => {
    assert.deepEqual(decide({ 'cdn-cache-control': 'max-age=60', 'cache-control': 'private' }), STORED);
    assert.deepEqual(
      decide({ 'cdn-cache-control': 'no-store', 'cache-control': 'public, max-age=60' }),
      refused('no-store'),
    );
  });

  it('an invalid CDN-Cache-Control is ignored and Cache-Control applies', () => {
    assert.deepEqual(
      decide({ 'cdn-cache-control': 'Max-Age=60', 'cache-control': 'no-store' }),
      refused('no-store'),
    );
  });
});

describe('decideStorable with partial content (RFC 9111 §3.3)', () => {
  it('stores a 206 that is one part agreeing with its Content-Range', () => {
    const headers = { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-4/10', 'content-length': '5' };
    assert.deepEqual(decide(headers, { status: 206 }), STORED);
  });

  it('refuses a 206 without a valid Content-Range, or whose length disagrees, and any 416', () => {
    assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status: 206 }), refused('partial-content'));
    assert.deepEqual(
      decide(
        { 'cache-control': 'max-age=60', 'content-range': 'bytes 4-9/10', 'content-length': '5' },
        { status: 206 },
      ),
      refused('partial-content'),
    );
    assert.deepEqual(decide({ 'cache-control': 'max-age=60' }, { status: 416 }), refused('partial-content'));
  });
});

describe('decideStorable with Surrogate-Control', () => {
  it('stores on its max-age even when Cache-Control says no-store', () => {
    assert.deepEqual(
      decide({ 'surrogate-control': 'max-age=60;strata', 'cache-control': 'no-store' }),
      STORED,
    );
  });

  it('no-store there wins over a fresh Cache-Control and Expires', () => {
    assert.deepEqual(
      decide({
        'surrogate-control': 'no-store',
        'cache-control': 'max-age=10000',
        expires: 'Thu, 01 Jan 2026 15:00:00 GMT',
      }),
      refused('no-store'),
    );
  });
});

describe('responseDirectives', () => {
  it('selects Strata-CDN-Cache-Control, then CDN-Cache-Control, then Cache-Control', () => {
    const all = {
      'strata-cdn-cache-control': 'max-age=1',
      'cdn-cache-control': 'max-age=2',
      'cache-control': 'max-age=3',
    };
    assert.deepEqual(responseDirectives(all, 'strata'), {
      directives: new Map([['max-age', '1']]),
      targeted: true,
    });
    const { 'strata-cdn-cache-control': _, ...two } = all;
    assert.deepEqual(responseDirectives(two, 'strata'), {
      directives: new Map([['max-age', '2']]),
      targeted: true,
    });
    assert.deepEqual(responseDirectives({ 'cache-control': 'max-age=3' }, 'strata'), {
      directives: new Map([['max-age', '3']]),
      targeted: false,
    });
  });

  it('reads Surrogate-Control after CDN-Cache-Control, before Cache-Control', () => {
    const headers = { 'surrogate-control': 'max-age=4', 'cache-control': 'max-age=3' };
    assert.deepEqual(responseDirectives(headers, 'strata'), {
      directives: new Map([['max-age', '4']]),
      targeted: true,
    });
    assert.equal(
      responseDirectives({ ...headers, 'cdn-cache-control': 'max-age=2' }, 'strata').directives.get(
        'max-age',
      ),
      '2',
    );
  });

  it('falls back to Cache-Control when Surrogate-Control targets another surrogate only', () => {
    const headers = { 'surrogate-control': 'max-age=3600;other', 'cache-control': 'max-age=3' };
    assert.deepEqual(responseDirectives(headers, 'strata'), {
      directives: new Map([['max-age', '3']]),
      targeted: false,
    });
    assert.equal(responseDirectives(headers, 'other').directives.get('max-age'), '3600');
  });

  it('skips an invalid or empty targeted field for the next one', () => {
    const headers = { 'strata-cdn-cache-control': 'INVALID', 'cdn-cache-control': 'max-age=2' };
    assert.equal(responseDirectives(headers, 'strata').directives.get('max-age'), '2');
    assert.equal(responseDirectives({ 'cdn-cache-control': '' }, 'strata').targeted, false);
  });
});
