import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHeaderMap } from '../../../../src/cache/policy/semantics.ts';
import { responseDirectives } from '../../../../src/cache/policy/storable.ts';
import { type StoredFreshnessInput, storedFreshness } from '../../../../src/cache/policy/stored-freshness.ts';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const at = (offsetSeconds: number) => new Date(T0 + offsetSeconds * 1000).toUTCString();

function input(
  fields: Record<string, string>,
  overrides: Partial<StoredFreshnessInput> = {},
): StoredFreshnessInput {
  const headers = toHeaderMap({ date: at(0), ...fields });
  return {
    status: 200,
    headers,
    cache: responseDirectives(headers, 'strata'),
    requestTime: T0,
    responseTime: T0,
    heuristicFraction: 0.1,
    heuristicMaxMs: 86_400_000,
    credentials: false,
    maxErrorLifetime: 5,
    grace: 0,
    ...overrides,
  };
}

describe('storedFreshness', () => {
  it('takes the lifetime from s-maxage, max-age or Expires and the age from §4.2.3, at the times passed in', () => {
    const fields = storedFreshness(
      input({ 'cache-control': 'max-age=60', age: '10' }, { requestTime: T0 - 2000, responseTime: T0 }),
    );
    assert.equal(fields.lifetime, 60);
    assert.equal(fields.source, 'max-age');
    assert.equal(fields.responseTime, T0);
    assert.equal(fields.initialAge, 12); // age_value + response_delay
  });

  it('keeps the RFC 5861 windows, and gives the site grace only to freshness the origin gave', () => {
    const windows = storedFreshness(
      input({ 'cache-control': 'max-age=60, stale-while-revalidate=30, stale-if-error=90' }),
    );
    assert.deepEqual([windows.swr, windows.sie, windows.noStale], [30, 90, false]);
    const graced = storedFreshness(input({ 'cache-control': 'max-age=60' }, { grace: 120 }));
    assert.equal(graced.swr, 120);
    const none = storedFreshness(input({}, { grace: 120 }));
    assert.deepEqual([none.lifetime, none.swr, none.sie, none.noStale], [0, 0, 0, true]);
  });

  it('never serves stale what must be revalidated (§5.2.2.2, §5.2.2.8, §5.2.2.10) or a server error', () => {
    for (const cacheControl of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60'])
      assert.equal(storedFreshness(input({ 'cache-control': cacheControl })).noStale, true, cacheControl);
    const error = storedFreshness(
      input({ 'cache-control': 'max-age=60, stale-if-error=600' }, { status: 503 }),
    );
    assert.deepEqual([error.lifetime, error.sie, error.noStale], [5, 0, true]);
  });

  it('marks no-cache without field names, and reuse under Authorization only when allowed (§3.5)', () => {
    assert.equal(storedFreshness(input({ 'cache-control': 'no-cache, max-age=60' })).noCache, true);
    assert.equal(
      storedFreshness(input({ 'cache-control': 'no-cache="set-cookie", max-age=60' })).noCache,
      false,
    );
    assert.equal(storedFreshness(input({ 'cache-control': 'max-age=60' })).authOk, false);
    for (const cacheControl of ['public, max-age=60', 's-maxage=60', 'max-age=60, must-revalidate'])
      assert.equal(storedFreshness(input({ 'cache-control': cacheControl })).authOk, true, cacheControl);
  });

  it('makes no heuristic guess for a request with credentials', () => {
    const modified = { 'last-modified': at(-100_000) };
    assert.equal(storedFreshness(input(modified)).source, 'heuristic');
    assert.equal(storedFreshness(input(modified, { credentials: true })).lifetime, 0);
  });

  it('reads the targeted field over Cache-Control (RFC 9213) and keeps the validators', () => {
    const fields = storedFreshness(
      input({
        'cache-control': 'max-age=5',
        'cdn-cache-control': 'max-age=300',
        etag: '"a"',
        'content-encoding': 'br',
      }),
    );
    assert.deepEqual(
      [fields.lifetime, fields.source, fields.etag, fields.contentEncoding],
      [300, 'cdn-cache-control', '"a"', 'br'],
    );
  });
});
