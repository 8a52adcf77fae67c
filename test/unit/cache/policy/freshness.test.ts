import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCacheControl, parseTargetedField } from '../../../../src/cache/policy/cache-control.ts';
import {
  correctedInitialAge,
  type FreshnessInput,
  freshnessLifetime,
  hasExplicitExpiration,
  parseAge,
  staleWindows,
} from '../../../../src/cache/policy/freshness.ts';
import { toHeaderMap } from '../../../../src/cache/policy/semantics.ts';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const at = (offsetSeconds: number) => new Date(NOW + offsetSeconds * 1000).toUTCString();

function input(cacheControl: string | undefined, overrides: Partial<FreshnessInput> = {}): FreshnessInput {
  return {
    status: 200,
    directives: parseCacheControl(cacheControl),
    targeted: false,
    date: at(0),
    expires: undefined,
    lastModified: undefined,
    responseTime: NOW,
    heuristicFraction: 0.1,
    heuristicMaxMs: 86_400_000,
    credentials: false,
    maxErrorLifetime: 5,
    ...overrides,
  };
}

describe('freshnessLifetime', () => {
  it('prefers s-maxage over max-age over Expires (§4.2.1)', () => {
    const expires = at(9000);
    assert.deepEqual(freshnessLifetime(input('max-age=60, s-maxage=120', { expires })), {
      lifetime: 120,
      source: 's-maxage',
    });
    assert.deepEqual(freshnessLifetime(input('max-age=60', { expires })), {
      lifetime: 60,
      source: 'max-age',
    });
    assert.deepEqual(freshnessLifetime(input(undefined, { expires })), { lifetime: 9000, source: 'expires' });
  });

  it('measures Expires from Date, or from the response time when Date is missing', () => {
    assert.equal(freshnessLifetime(input(undefined, { expires: at(100), date: at(-50) })).lifetime, 150);
    assert.equal(freshnessLifetime(input(undefined, { expires: at(100), date: undefined })).lifetime, 100);
    assert.equal(freshnessLifetime(input(undefined, { expires: at(-100) })).lifetime, 0);
  });

  it('reads an Expires whose day, month or GMT is in another letter case', () => {
    const expires = at(100).toUpperCase();
    assert.deepEqual(freshnessLifetime(input(undefined, { expires })), { lifetime: 100, source: 'expires' });
    assert.equal(
      freshnessLifetime(input(undefined, { expires: at(100).replace('GMT', 'gmt') })).lifetime,
      100,
    );
  });

  it('treats an invalid Expires, such as "0", as already expired (§5.3)', () => {
    for (const expires of ['0', '-1', 'never', 'Mon, 32 Jan 2026 00:00:00 GMT']) {
      assert.deepEqual(freshnessLifetime(input(undefined, { expires })), { lifetime: 0, source: 'expires' });
    }
  });

  it('treats an invalid s-maxage or max-age as stale, never falling back to a later source', () => {
    assert.deepEqual(freshnessLifetime(input('s-maxage=abc, max-age=60')), {
      lifetime: 0,
      source: 's-maxage',
    });
    assert.deepEqual(freshnessLifetime(input('max-age=-5', { expires: at(60) })), {
      lifetime: 0,
      source: 'max-age',
    });
  });

  it('caps an enormous max-age at 2147483648 seconds', () => {
    assert.equal(freshnessLifetime(input('max-age=99999999999999')).lifetime, 2147483648);
  });

  it('reports a targeted field as the source and ignores Expires under it (RFC 9213)', () => {
    const directives = parseTargetedField('max-age=30')!;
    assert.deepEqual(freshnessLifetime(input(undefined, { directives, targeted: true, expires: at(999) })), {
      lifetime: 30,
      source: 'cdn-cache-control',
    });
    const none = parseTargetedField('public')!;
    const result = freshnessLifetime(
      input(undefined, { directives: none, targeted: true, expires: at(999) }),
    );
    assert.equal(result.source, 'none');
  });

  it('uses 10% of Date minus Last-Modified as the heuristic (§4.2.2)', () => {
    assert.deepEqual(freshnessLifetime(input(undefined, { lastModified: at(-10_000) })), {
      lifetime: 1000,
      source: 'heuristic',
    });
  });

  it('caps the heuristic at heuristicMax', () => {
    const result = freshnessLifetime(input(undefined, { lastModified: at(-100 * 86_400) }));
    assert.deepEqual(result, { lifetime: 86_400, source: 'heuristic' });
  });

  it('gives no heuristic lifetime for a Last-Modified in the future or missing', () => {
    assert.equal(freshnessLifetime(input(undefined, { lastModified: at(500) })).lifetime, 0);
    assert.deepEqual(freshnessLifetime(input(undefined)), { lifetime: 0, source: 'none' });
  });

  it('applies heuristics only to heuristically cacheable statuses, or to responses marked public', () => {
    const lastModified = at(-10_000);
    for (const status of [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]) {
      assert.equal(
        freshnessLifetime(input(undefined, { status, lastModified, maxErrorLifetime: 86_400 })).lifetime,
        1000,
        String(status),
      );
    }
    for (const status of [302, 303, 307, 400, 403, 500, 502, 503]) {
      assert.deepEqual(freshnessLifetime(input(undefined, { status, lastModified })), {
        lifetime: 0,
        source: 'none',
      });
    }
    assert.equal(freshnessLifetime(input('public', { status: 302, lastModified })).lifetime, 1000);
  });

  it('gives no heuristic lifetime to a response to a request with Cookie or Authorization (web cache deception)', () => {
    const lastModified = at(-10_000);
    assert.deepEqual(freshnessLifetime(input(undefined, { lastModified, credentials: true })), {
      lifetime: 0,
      source: 'none',
    });
    assert.equal(freshnessLifetime(input('max-age=60', { lastModified, credentials: true })).lifetime, 60);
  });

  it('caps the lifetime of a server error at maxErrorLifetime', () => {
    for (const status of [500, 501, 503, 599]) {
      assert.deepEqual(freshnessLifetime(input('max-age=600', { status, maxErrorLifetime: 5 })), {
        lifetime: 5,
        source: 'max-age',
      });
    }
    assert.equal(freshnessLifetime(input('max-age=3', { status: 503, maxErrorLifetime: 5 })).lifetime, 3);
    assert.equal(freshnessLifetime(input('max-age=600', { status: 404, maxErrorLifetime: 5 })).lifetime, 600);
  });

  it('regression: an impossible Last-Modified gives no heuristic lifetime instead of NaN', () => {
    const result = freshnessLifetime(input(undefined, { lastModified: 'Thu, 01 Jan 2026 25:00:00 GMT' }));
    assert.deepEqual(result, { lifetime: 0, source: 'none' });
  });
});

describe('hasExplicitExpiration', () => {
  it('is true for s-maxage, max-age, or Expires outside a targeted field', () => {
    assert.equal(hasExplicitExpiration(parseCacheControl('s-maxage=1'), false, undefined), true);
    assert.equal(hasExplicitExpiration(parseCacheControl('max-age=1'), false, undefined), true);
    assert.equal(hasExplicitExpiration(parseCacheControl('public'), false, 'x'), true);
    assert.equal(hasExplicitExpiration(parseCacheControl('public'), true, 'x'), false);
    assert.equal(hasExplicitExpiration(parseCacheControl(''), false, undefined), false);
  });
});

describe('correctedInitialAge (RFC 9111 §4.2.3)', () => {
  it('is zero for an immediate response with a current Date and no Age', () => {
    assert.equal(correctedInitialAge(undefined, at(0), NOW, NOW), 0);
  });

  it('uses the apparent age when Date lies in the past', () => {
    assert.equal(correctedInitialAge(undefined, at(-30), NOW, NOW), 30);
  });

  it('adds the response delay to the Age header value', () => {
    assert.equal(correctedInitialAge('100', at(0), NOW - 2000, NOW), 102);
  });

  it('takes the larger of the apparent age and the corrected Age', () => {
    assert.equal(correctedInitialAge('10', at(-60), NOW - 1000, NOW), 60);
    assert.equal(correctedInitialAge('90', at(-60), NOW - 1000, NOW), 91);
  });

  it('never goes negative when Date is in the future', () => {
    assert.equal(correctedInitialAge(undefined, at(3600), NOW, NOW), 0);
  });

  it('ignores a missing or invalid Date, and an invalid Age as if it were absent', () => {
    assert.equal(correctedInitialAge('20', undefined, NOW - 3000, NOW), 23);
    assert.equal(correctedInitialAge(undefined, 'junk', NOW - 3000, NOW), 3);
    assert.equal(correctedInitialAge('abc', 'junk', NOW - 3000, NOW), 3);
    assert.equal(correctedInitialAge('-7200', undefined, NOW - 3000, NOW), 3);
  });
});

describe('parseAge', () => {
  it('reads delta-seconds, capped at 2147483648', () => {
    assert.equal(parseAge('42'), 42);
    assert.equal(parseAge(' 7 '), 7);
    assert.equal(parseAge('99999999999999'), 2147483648);
    assert.equal(parseAge(undefined), 0);
  });

  it('ignores an Age that is not a non-negative integer, as if it were absent', () => {
    for (const value of ['', 'abc', '-7200', '7200.0', '3600;foo=bar', '7200;foo=111', ' , 7200']) {
      assert.equal(parseAge(value), 0, value);
    }
  });

  it('reads the first value of an Age list on one line', () => {
    assert.equal(parseAge('0, 7200'), 0);
    assert.equal(parseAge('0,7200'), 0);
    assert.equal(parseAge('7200,0'), 7200);
    assert.equal(parseAge('0, 0'), 0);
    assert.equal(parseAge('3600, 3600'), 3600);
  });

  it('reads the first line of an Age field sent on several lines (joined with a comma)', () => {
    assert.equal(parseAge(toHeaderMap({ age: ['0', '7200'] }).age), 0);
    assert.equal(parseAge(toHeaderMap({ age: ['7200', '0'] }).age), 7200);
    assert.equal(parseAge(toHeaderMap({ age: ['0', '0'] }).age), 0);
  });

  it('clamps an Age of 2147483648 or more to 2147483648, so the response is stale', () => {
    assert.equal(parseAge('2147483648'), 2147483648);
    assert.equal(parseAge('2147483650'), 2147483648);
    assert.equal(parseAge('99999999999999999999999'), 2147483648);
  });
});

describe('staleWindows', () => {
  it('reads stale-while-revalidate and stale-if-error, zero when absent or invalid', () => {
    assert.deepEqual(staleWindows(parseCacheControl('stale-while-revalidate=30, stale-if-error=600')), {
      swr: 30,
      sie: 600,
    });
    assert.deepEqual(staleWindows(parseCacheControl('stale-while-revalidate=x')), { swr: 0, sie: 0 });
  });
});
