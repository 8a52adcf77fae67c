/**
 * The faults of http-cache-semantics 4.3.0 for a shared edge cache (see semantics.ts).
 * For each: what the library itself does, called directly, and what our policy does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import CachePolicy from 'http-cache-semantics';
import { freshnessLifetime } from '../../../../src/cache/policy/freshness.ts';
import { decideReuse, type StoredFreshness } from '../../../../src/cache/policy/reuse.ts';
import { baselineStorable, type HeaderMap, toHeaderMap } from '../../../../src/cache/policy/semantics.ts';
import { decideStorable, responseDirectives } from '../../../../src/cache/policy/storable.ts';
import { normalizeFieldValue, secondaryKey } from '../../../../src/cache/policy/vary.ts';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const DATE = new Date(NOW).toUTCString();

type Headers = Record<string, string | string[]>;

function libraryPolicy(
  status: number,
  responseHeaders: Headers,
  requestHeaders: Headers = {},
  method = 'GET',
) {
  return new CachePolicy(
    { method, url: '/', headers: requestHeaders as Record<string, string> },
    { status, headers: { date: DATE, ...responseHeaders } as Record<string, string> },
    { shared: true },
  );
}

function storable(
  status: number,
  responseHeaders: HeaderMap,
  requestHeaders: HeaderMap = {},
  method = 'GET',
) {
  const headers = { date: DATE, ...responseHeaders };
  return decideStorable({
    method,
    requestHeaders,
    status,
    responseHeaders: headers,
    response: responseDirectives(headers, 'strata'),
    serverErrors: true,
  });
}

function lifetime(status: number, responseHeaders: HeaderMap): number {
  const { directives, targeted } = responseDirectives(responseHeaders, 'strata');
  return freshnessLifetime({
    status,
    directives,
    targeted,
    date: DATE,
    expires: responseHeaders.expires,
    lastModified: responseHeaders['last-modified'],
    responseTime: NOW,
    heuristicFraction: 0.1,
    heuristicMaxMs: 86_400_000,
    credentials: false,
    maxErrorLifetime: 5,
  }).lifetime;
}

function stored(overrides: Partial<StoredFreshness>): StoredFreshness {
  return {
    lifetime: 600,
    responseTime: NOW,
    initialAge: 0,
    swr: 0,
    sie: 0,
    noStale: false,
    noCache: false,
    invalidated: false,
    ...overrides,
  };
}

describe('fault 1: array-valued headers', () => {
  it('the library throws when Cache-Control arrives as an array (a field sent twice)', () => {
    assert.throws(() => libraryPolicy(200, { 'cache-control': ['max-age=60', 'public'] }), TypeError);
  });

  it('toHeaderMap joins repeated fields so the wrapper never throws and keeps every directive', () => {
    const headers = toHeaderMap({ 'Cache-Control': ['max-age=60', 'no-store'], 'X-One': 'a' });
    assert.deepEqual(headers, { 'cache-control': 'max-age=60, no-store', 'x-one': 'a' });
    assert.deepEqual(storable(200, headers), { storable: false, reason: 'no-store' });
  });
});

describe('fault 2: no CDN-Cache-Control', () => {
  it('the library ignores CDN-Cache-Control and obeys Cache-Control: no-store', () => {
    const policy = libraryPolicy(200, { 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' });
    assert.equal(policy.storable(), false);
  });

  it('the library takes its lifetime from Cache-Control, not from CDN-Cache-Control', () => {
    const policy = libraryPolicy(200, { 'cdn-cache-control': 'max-age=600', 'cache-control': 'max-age=10' });
    assert.equal(policy.maxAge(), 10);
  });

  it('our policy stores under CDN-Cache-Control and ignores Cache-Control and Expires (RFC 9213 §2.1)', () => {
    const headers = { 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store', expires: '0' };
    assert.equal(storable(200, headers).storable, true);
    assert.equal(lifetime(200, headers), 600);
  });

  it('Strata-CDN-Cache-Control is preferred over CDN-Cache-Control', () => {
    const headers = { 'strata-cdn-cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=600' };
    assert.equal(lifetime(200, headers), 5);
  });
});

describe('fault 3: must-understand with no-store', () => {
  it('the library refuses must-understand, no-store even for a status it understands', () => {
    const policy = libraryPolicy(200, { 'cache-control': 'must-understand, no-store, max-age=60' });
    assert.equal(policy.storable(), false);
  });

  it('our policy ignores no-store under must-understand when the status is understood (§5.2.2.3)', () => {
    const verdict = storable(200, { 'cache-control': 'must-understand, no-store, max-age=60' });
    assert.equal(verdict.storable, true);
  });

  it('our policy refuses must-understand for a status it does not understand', () => {
    const verdict = storable(299, { 'cache-control': 'must-understand, no-store, max-age=60' });
    assert.deepEqual(verdict, { storable: false, reason: 'must-understand' });
  });
});

describe('fault 4: a fresh must-revalidate response is never reused', () => {
  it('the library demands revalidation of a fresh must-revalidate response', () => {
    const policy = libraryPolicy(200, { 'cache-control': 'max-age=600, must-revalidate' });
    assert.equal(policy.stale(), false);
    assert.equal(policy.satisfiesWithoutRevalidation({ method: 'GET', url: '/', headers: {} }), false);
  });

  it('our policy reuses it while fresh and revalidates only once stale', () => {
    const entry = stored({ lifetime: 600, noStale: true });
    assert.deepEqual(decideReuse(entry, undefined, NOW + 10_000), { kind: 'fresh' });
    assert.deepEqual(decideReuse(entry, undefined, NOW + 601_000), { kind: 'revalidate', stale: true });
  });
});

describe('fault 5: immutable without max-age', () => {
  it('the library gives `immutable` without max-age a lifetime of 1000 days', () => {
    const policy = libraryPolicy(200, { 'cache-control': 'public, immutable' });
    assert.equal(policy.maxAge(), 1000 * 86_400);
  });

  it('our policy gives it no explicit lifetime: immutable is not a freshness directive', () => {
    assert.equal(lifetime(200, { 'cache-control': 'public, immutable' }), 0);
  });

  it('our heuristic for an immutable response with Last-Modified stays within the cap', () => {
    const lastModified = new Date(NOW - 100 * 86_400_000).toUTCString();
    assert.equal(lifetime(200, { 'cache-control': 'immutable', 'last-modified': lastModified }), 86_400);
  });
});

describe('fault 6: HEAD, 206 and Vary normalization', () => {
  it('the library will not answer a HEAD request from a stored GET response', () => {
    const policy = libraryPolicy(200, { 'cache-control': 'max-age=600' });
    assert.equal(policy.satisfiesWithoutRevalidation({ method: 'HEAD', url: '/', headers: {} }), false);
  });

  it('the library stores a response to HEAD, which has no body to serve a later GET', () => {
    assert.equal(libraryPolicy(200, { 'cache-control': 'max-age=600' }, {}, 'HEAD').storable(), true);
  });

  it('our policy stores only GET responses (HEAD is answered from a stored GET by the lookup)', () => {
    assert.deepEqual(storable(200, { 'cache-control': 'max-age=600' }, {}, 'HEAD'), {
      storable: false,
      reason: 'method',
    });
  });

  it('206: the library refuses it; ours stores one valid part as a partial entry (RFC 9111 §3.3), else says why', () => {
    const headers = { 'cache-control': 'max-age=600', 'content-range': 'bytes 0-1/10' };
    assert.equal(libraryPolicy(206, headers, { range: 'bytes=0-1' }).storable(), false);
    assert.equal(storable(206, headers, { range: 'bytes=0-1' }).storable, true);
    assert.deepEqual(storable(206, { 'cache-control': 'max-age=600' }, { range: 'bytes=0-1' }), {
      storable: false,
      reason: 'partial-content',
    });
  });

  it('the library treats reordered, re-cased or re-spaced Accept-Encoding as a different variant', () => {
    const policy = libraryPolicy(
      200,
      { 'cache-control': 'max-age=600', vary: 'Accept-Encoding' },
      {
        'accept-encoding': 'gzip, br',
      },
    );
    for (const value of ['br,gzip', 'GZIP, BR', 'gzip,  br']) {
      const request = { method: 'GET', url: '/', headers: { 'accept-encoding': value } };
      assert.equal(policy.satisfiesWithoutRevalidation(request), false, value);
    }
  });

  it('our secondary key is the same for every spelling of the same Accept-Encoding', () => {
    const keys = ['gzip, br', 'br,gzip', 'GZIP, BR', 'gzip,  br', ['gzip', 'br']].map((value) =>
      secondaryKey(['accept-encoding'], { 'accept-encoding': value }),
    );
    assert.equal(new Set(keys).size, 1);
    assert.equal(normalizeFieldValue('accept-encoding', 'gzip;q=1.0, br ; q=0.5'), 'gzip');
  });
});

describe('fault 7: unknown statuses refused', () => {
  it('the library refuses a final status it does not know, even with explicit freshness', () => {
    for (const status of [299, 418, 422, 599]) {
      assert.equal(
        libraryPolicy(status, { 'cache-control': 'max-age=600' }).storable(),
        false,
        String(status),
      );
    }
  });

  it('our policy stores any final status with explicit freshness (§3), but for errors', () => {
    for (const status of [299, 399, 599]) {
      assert.equal(storable(status, { 'cache-control': 'max-age=600' }).storable, true, String(status));
    }
    for (const status of [418, 422]) {
      assert.deepEqual(storable(status, { 'cache-control': 'max-age=600' }), {
        storable: false,
        reason: 'error-status',
      });
    }
  });

  it('our policy still refuses an unknown status without explicit freshness', () => {
    assert.deepEqual(storable(299, {}), { storable: false, reason: 'no-freshness' });
  });
});

describe('fault 8: qualified private', () => {
  it('the library refuses private="set-cookie" as if it were unqualified private', () => {
    const headers = { 'cache-control': 'max-age=60, private="set-cookie"', 'set-cookie': 'id=1' };
    assert.equal(libraryPolicy(200, headers).storable(), false);
  });

  it('regression: private="set-cookie" was refused as not-storable by the baseline; it is stored with the field stripped', () => {
    const verdict = storable(200, {
      'cache-control': 'max-age=60, private="set-cookie"',
      'set-cookie': 'id=1',
    });
    assert.deepEqual(verdict, { storable: true, stripFields: ['set-cookie'], noCache: false });
  });

  it('regression: private="x-user" on a response without Set-Cookie is stored with X-User stripped', () => {
    const verdict = storable(200, { 'cache-control': 'max-age=60, private="X-User"' });
    assert.deepEqual(verdict, { storable: true, stripFields: ['x-user'], noCache: false });
  });
});

describe('the remembered baseline verdicts', () => {
  const ask = (requestHeaders: HeaderMap, responseHeaders: HeaderMap, status = 200, targeted = false) =>
    baselineStorable(
      {
        method: 'GET',
        requestHeaders,
        status,
        responseHeaders,
        response: { directives: responseDirectives(responseHeaders, 'strata').directives, targeted },
      },
      false,
    );

  it('gives the verdict CachePolicy gives for every input it reads, asked in any order', () => {
    const cases: { req: HeaderMap; res: HeaderMap; status?: number }[] = [
      { req: {}, res: { 'cache-control': 'max-age=60' } },
      { req: { authorization: 'Bearer x' }, res: { 'cache-control': 'max-age=60' } },
      { req: { authorization: 'Bearer x' }, res: { 'cache-control': 'max-age=60, public' } },
      { req: { 'cache-control': 'no-store' }, res: { 'cache-control': 'max-age=60' } },
      { req: {}, res: { expires: 'Thu, 01 Jan 2099 00:00:00 GMT' } },
      { req: {}, res: {} },
      { req: {}, res: {}, status: 404 },
      { req: {}, res: {}, status: 201 },
      { req: {}, res: { 'cache-control': 'no-store' } },
    ];
    for (const round of [cases, [...cases].reverse(), cases]) {
      for (const { req, res, status = 200 } of round) {
        const expected = new CachePolicy(
          { method: 'GET', url: '/', headers: req as Record<string, string> },
          { status, headers: res as Record<string, string> },
          { shared: true },
        ).storable();
        assert.equal(ask(req, res, status), expected, JSON.stringify({ req, res, status }));
      }
    }
  });
});
