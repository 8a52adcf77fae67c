import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCacheControl } from '../../../../src/cache/policy/cache-control.ts';
import {
  currentAge,
  decideReuse,
  onlyIfCached,
  remainingFreshness,
  requestDirectives,
  type StoredFreshness,
  withinStaleIfError,
} from '../../../../src/cache/policy/reuse.ts';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
/** `seconds` after the response arrived. */
const after = (seconds: number) => T0 + seconds * 1000;
const cc = (value: string) => parseCacheControl(value);

function stored(overrides: Partial<StoredFreshness> = {}): StoredFreshness {
  return {
    lifetime: 100,
    responseTime: T0,
    initialAge: 0,
    swr: 0,
    sie: 0,
    noStale: false,
    noCache: false,
    invalidated: false,
    ...overrides,
  };
}

const FRESH = { kind: 'fresh' };
const STALE_ALLOWED = { kind: 'stale-allowed' };
const SWR = { kind: 'stale-while-revalidate' };
const REVALIDATE_STALE = { kind: 'revalidate', stale: true };
const REVALIDATE_FRESH = { kind: 'revalidate', stale: false };

describe('current age and remaining freshness', () => {
  it('adds resident time to the corrected initial age', () => {
    const entry = stored({ initialAge: 10 });
    assert.equal(currentAge(entry, after(5.7)), 15);
    assert.equal(remainingFreshness(entry, after(20)), 70);
  });

  it('an invalidated entry is stale whatever its lifetime', () => {
    assert.ok(remainingFreshness(stored({ lifetime: 9999, invalidated: true }), after(0)) < 0);
    assert.ok(
      remainingFreshness(stored({ lifetime: 9999, invalidated: true, invalidatedAge: 0 }), after(0)) < 0,
    );
  });

  it('an entry invalidated with its age is stale from then, not from when it was stored', () => {
    const marked = stored({ lifetime: 3600, invalidated: true, invalidatedAge: 500 });
    assert.equal(remainingFreshness(marked, after(530)), -30);
    // Its lifetime ran out before the mark: stale since then.
    assert.equal(
      remainingFreshness(stored({ lifetime: 100, invalidated: true, invalidatedAge: 500 }), after(530)),
      -430,
    );
    // Within the origin's stale-while-revalidate window counted from the mark.
    assert.deepEqual(decideReuse({ ...marked, swr: 60 }, undefined, after(530)), SWR);
    assert.deepEqual(decideReuse({ ...marked, swr: 60 }, undefined, after(561)), REVALIDATE_STALE);
  });
});

describe('decideReuse without request directives', () => {
  it('serves a fresh response', () => {
    assert.deepEqual(decideReuse(stored(), undefined, after(99)), FRESH);
  });

  it('revalidates once the lifetime is used up, counting the initial age', () => {
    assert.deepEqual(decideReuse(stored(), undefined, after(100)), REVALIDATE_STALE);
    assert.deepEqual(decideReuse(stored({ initialAge: 60 }), undefined, after(41)), REVALIDATE_STALE);
  });

  it('revalidates every reuse of an unqualified no-cache response, even fresh', () => {
    assert.deepEqual(decideReuse(stored({ noCache: true }), undefined, after(1)), REVALIDATE_FRESH);
  });

  it('regression: a response whose lifetime just ran out was served stale-while-revalidate with no window', () => {
    assert.deepEqual(decideReuse(stored({ swr: 0 }), undefined, after(100)), REVALIDATE_STALE);
    assert.deepEqual(decideReuse(stored({ swr: 0 }), cc('max-age=1000'), after(100)), REVALIDATE_STALE);
  });

  it('serves stale and revalidates in the background within stale-while-revalidate (RFC 5861 §3)', () => {
    const entry = stored({ swr: 30 });
    assert.deepEqual(decideReuse(entry, undefined, after(130)), SWR);
    assert.deepEqual(decideReuse(entry, undefined, after(131)), REVALIDATE_STALE);
  });

  it('never serves stale under must-revalidate, proxy-revalidate or s-maxage, even within swr', () => {
    assert.deepEqual(
      decideReuse(stored({ noStale: true, swr: 30 }), undefined, after(110)),
      REVALIDATE_STALE,
    );
  });

  it('treats an invalidated entry as stale: revalidate, or swr when a window allows', () => {
    assert.deepEqual(decideReuse(stored({ invalidated: true }), undefined, after(1)), REVALIDATE_STALE);
    assert.deepEqual(decideReuse(stored({ invalidated: true, swr: 30 }), undefined, after(1)), SWR);
  });
});

describe('decideReuse with request directives', () => {
  it('no-cache forces validation of a fresh response (§5.2.1.4)', () => {
    assert.deepEqual(decideReuse(stored(), cc('no-cache'), after(1)), REVALIDATE_FRESH);
  });

  it('max-age: serves only responses at most that old (§5.2.1.1)', () => {
    assert.deepEqual(decideReuse(stored(), cc('max-age=10'), after(10)), FRESH);
    assert.deepEqual(decideReuse(stored(), cc('max-age=10'), after(11)), REVALIDATE_FRESH);
    assert.deepEqual(decideReuse(stored(), cc('max-age=0'), after(0.5)), REVALIDATE_FRESH);
    assert.deepEqual(decideReuse(stored(), cc('max-age=10'), after(150)), REVALIDATE_STALE);
  });

  it('min-fresh: serves only responses fresh for at least that long (§5.2.1.3)', () => {
    assert.deepEqual(decideReuse(stored(), cc('min-fresh=30'), after(70)), FRESH);
    assert.deepEqual(decideReuse(stored(), cc('min-fresh=30'), after(71)), REVALIDATE_FRESH);
  });

  it('max-stale with a value accepts a response stale by at most that much (§5.2.1.2)', () => {
    assert.deepEqual(decideReuse(stored(), cc('max-stale=50'), after(150)), STALE_ALLOWED);
    assert.deepEqual(decideReuse(stored(), cc('max-stale=50'), after(151)), REVALIDATE_STALE);
  });

  it('max-stale without a value accepts a stale response of any age', () => {
    assert.deepEqual(decideReuse(stored(), cc('max-stale'), after(1_000_000)), STALE_ALLOWED);
  });

  it('max-stale cannot override must-revalidate, proxy-revalidate or s-maxage (§4.2.4)', () => {
    assert.deepEqual(decideReuse(stored({ noStale: true }), cc('max-stale'), after(101)), REVALIDATE_STALE);
  });

  it('never serves stale a response without freshness from the origin, even a record stored before noStale marked it', () => {
    for (const source of ['none', 'heuristic']) {
      const record = stored({ lifetime: 0, source, swr: 30, sie: 30 });
      assert.deepEqual(decideReuse(record, cc('max-stale'), after(1)), REVALIDATE_STALE);
      assert.deepEqual(decideReuse(record, undefined, after(1)), REVALIDATE_STALE);
      assert.equal(withinStaleIfError(record, undefined, after(1)), false);
    }
    // An explicit max-age=0 is the origin's word: max-stale may still take it (§5.2.1.2).
    assert.deepEqual(
      decideReuse(stored({ lifetime: 0, source: 'max-age' }), cc('max-stale'), after(1)),
      STALE_ALLOWED,
    );
  });

  it('falls back to the response stale-while-revalidate window past max-stale', () => {
    assert.deepEqual(decideReuse(stored({ swr: 100 }), cc('max-stale=10'), after(150)), SWR);
  });

  it('ignores invalid and unknown directives', () => {
    assert.deepEqual(decideReuse(stored(), cc('max-age=abc, foo, min-fresh=-1'), after(50)), FRESH);
  });
});

describe('requestDirectives', () => {
  it('honours Pragma: no-cache only without Cache-Control (§5.4)', () => {
    assert.deepEqual([...requestDirectives(undefined, 'no-cache')!], [['no-cache', '']]);
    assert.deepEqual([...requestDirectives(undefined, 'x, No-Cache')!], [['no-cache', '']]);
    assert.deepEqual([...requestDirectives('max-age=5', 'no-cache')!], [['max-age', '5']]);
    assert.equal(requestDirectives(undefined, 'no-cache-please'), undefined);
    assert.equal(requestDirectives(undefined, undefined), undefined);
  });
});

describe('withinStaleIfError (RFC 5861 §4)', () => {
  it('allows a fresh response and one stale within the response window', () => {
    const entry = stored({ sie: 60 });
    assert.equal(withinStaleIfError(entry, undefined, after(50)), true);
    assert.equal(withinStaleIfError(entry, undefined, after(160)), true);
    assert.equal(withinStaleIfError(entry, undefined, after(161)), false);
  });

  it('without a window, allows only a response that is still fresh', () => {
    assert.equal(withinStaleIfError(stored(), undefined, after(99)), true);
    assert.equal(withinStaleIfError(stored(), undefined, after(100)), false);
    assert.equal(withinStaleIfError(stored(), undefined, after(101)), false);
  });

  it('a request stale-if-error widens the window', () => {
    assert.equal(withinStaleIfError(stored({ sie: 10 }), cc('stale-if-error=300'), after(350)), true);
  });

  it('is refused under must-revalidate, proxy-revalidate or s-maxage', () => {
    assert.equal(withinStaleIfError(stored({ sie: 600, noStale: true }), undefined, after(101)), false);
  });

  it('refuses a no-cache response, fresh or not, unless a stale-if-error window was given (§5.2.2.4)', () => {
    assert.equal(withinStaleIfError(stored({ noCache: true }), undefined, after(10)), false);
    assert.equal(withinStaleIfError(stored({ noCache: true }), undefined, after(200)), false);
    assert.equal(withinStaleIfError(stored({ noCache: true, sie: 60 }), undefined, after(150)), true);
    assert.equal(withinStaleIfError(stored({ noCache: true, sie: 60 }), undefined, after(161)), false);
  });

  it('refuses a fresh response to a request that said no-cache, unless it gave a window (§5.2.1.4)', () => {
    assert.equal(withinStaleIfError(stored(), cc('no-cache'), after(10)), false);
    assert.equal(withinStaleIfError(stored(), cc('no-cache, stale-if-error=60'), after(10)), true);
  });
});

describe('onlyIfCached (RFC 9111 §5.2.1.7)', () => {
  it('is true for the only-if-cached directive, in any case, among others', () => {
    assert.equal(onlyIfCached(cc('only-if-cached')), true);
    assert.equal(onlyIfCached(cc('max-age=5, ONLY-IF-CACHED')), true);
  });

  it('is false without the directive, even when another directive or value mentions it', () => {
    assert.equal(onlyIfCached(undefined), false);
    assert.equal(onlyIfCached(cc('x-only-if-cached')), false);
    assert.equal(onlyIfCached(cc('max-age=5, ext="only-if-cached"')), false);
    assert.equal(onlyIfCached(requestDirectives(undefined, 'no-cache')), false);
  });
});
