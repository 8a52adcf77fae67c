/**
 * Our own conformance cases: what the public suite does not cover. Each runs against fresh
 * Strata nodes with an empty cache and a scripted origin, and cites the clause it checks.
 */
import { SITE } from './run-cases.ts';
import type { Case, Step } from './types.ts';

const FRESH = { 'Cache-Control': 'max-age=300' };
/** RFC 9211 §2.2: uri-miss, or miss from a cache that does not tell uri-miss and vary-miss apart. */
const MISS = ['uri-miss', 'miss'];
/**
 * A pause after a miss so that its fill is committed: a request arriving while the entry is
 * still being written reads the fill (Cache-Status: collapsed) instead of the entry. The
 * collapse cases below exercise that window on purpose; the others step past it.
 */
const SETTLE: Step = { do: 'wait', ms: 300 };

export const cases: Case[] = [
  // Request collapsing (RFC 9111 §4; RFC 9211 §2.6)
  {
    id: 'collapse-cold-key',
    title: 'collapses 20 concurrent misses on a cold key into one origin request',
    rfc: 'RFC 9111 §4 (reuse of a stored response); RFC 9211 §2.6 (collapsed)',
    topology: 'single',
    origin: { '/a': { headers: FRESH, delayMs: 400 } },
    steps: [
      {
        do: 'concurrent',
        path: '/a',
        count: 20,
        expect: { originRequests: 1, sameBody: true, servedFromFillAtLeast: 19 },
      },
      SETTLE,
      {
        do: 'request',
        path: '/a',
        expect: { originRequests: 1, cacheStatus: { hit: true }, bodyFromOriginRequest: 1 },
      },
    ],
  },
  {
    id: 'collapse-private-not-shared',
    title: 'does not hand a private response to collapsed followers',
    rfc: 'RFC 9111 §5.2.2.7 (private: a shared cache MUST NOT store); §4 (only stored responses are reused)',
    topology: 'single',
    origin: { '/p': { headers: { 'Cache-Control': 'private, max-age=300' }, delayMs: 300 } },
    steps: [{ do: 'concurrent', path: '/p', count: 5, expect: { originRequests: 5 } }],
  },
  {
    id: 'collapse-no-store-not-shared',
    title: 'does not hand a no-store response to collapsed followers',
    rfc: 'RFC 9111 §5.2.2.5 (no-store: MUST NOT store); §4',
    topology: 'single',
    origin: { '/n': { headers: { 'Cache-Control': 'no-store' }, delayMs: 300 } },
    steps: [{ do: 'concurrent', path: '/n', count: 5, expect: { originRequests: 5 } }],
  },

  {
    id: 'collapse-no-cache-not-shared',
    title: 'does not hand a no-cache response to collapsed followers',
    rfc: 'RFC 9111 §5.2.2.4 (no-cache: MUST NOT be used for any other request without validation)',
    topology: 'single',
    origin: { '/nc': { headers: { 'Cache-Control': 'no-cache, max-age=300' }, delayMs: 300 } },
    steps: [{ do: 'concurrent', path: '/nc', count: 5, expect: { originRequests: 5 } }],
  },
  {
    id: 'collapse-stale-on-arrival-not-shared',
    title: 'does not hand a response that arrives already stale to collapsed followers',
    rfc: 'RFC 9111 §4.2.4 (a cache MUST NOT generate a stale response unless permitted); §4.2.3 (Age)',
    topology: 'single',
    origin: { '/sa': { headers: { 'Cache-Control': 'max-age=60', Age: '120' }, delayMs: 300 } },
    steps: [{ do: 'concurrent', path: '/sa', count: 5, expect: { originRequests: 5 } }],
  },
  {
    id: 'collapse-follower-conditional',
    title: 'answers collapsed followers whose If-None-Match matches with 304',
    rfc: 'RFC 9111 §4.3.2 (a cache answers conditional requests from the response it reuses); RFC 9110 §13.1.2',
    topology: 'single',
    origin: { '/cf': { headers: { 'Cache-Control': 'max-age=300', ETag: '"x"' }, delayMs: 300 } },
    steps: [
      {
        do: 'concurrent',
        path: '/cf',
        count: 5,
        headers: { 'If-None-Match': '"x"' },
        // The leader's own answer may be the origin's 200; the four followers reuse it.
        expect: { originRequests: 1, status: { status: 304, atLeast: 4 } },
      },
    ],
  },

  // Cache-Status values (RFC 9211)
  {
    id: 'cache-status-miss-stored-then-hit',
    title: 'says fwd=uri-miss (or miss) and stored on a miss, then hit with a ttl',
    rfc: 'RFC 9211 §2.1 (hit), §2.2 (fwd=uri-miss), §2.4 (ttl), §2.5 (stored)',
    topology: 'single',
    origin: { '/s': { headers: FRESH } },
    steps: [
      {
        do: 'request',
        path: '/s',
        expect: {
          status: 200,
          originRequests: 1,
          cacheStatusMembers: 1,
          cacheStatus: { fwd: MISS, stored: true },
        },
      },
      SETTLE,
      {
        do: 'request',
        path: '/s',
        expect: {
          originRequests: 1,
          cacheStatus: { hit: true, ttl: { min: 290, max: 300 } },
          bodyFromOriginRequest: 1,
        },
      },
    ],
  },
  {
    id: 'cache-status-not-stored',
    title: 'does not say stored for a no-store response',
    rfc: 'RFC 9211 §2.5 (stored); RFC 9111 §5.2.2.5',
    topology: 'single',
    origin: { '/ns': { headers: { 'Cache-Control': 'no-store' } } },
    steps: [
      {
        do: 'request',
        path: '/ns',
        expect: { originRequests: 1, cacheStatus: { fwd: MISS, stored: false } },
      },
      SETTLE,
      { do: 'request', path: '/ns', expect: { originRequests: 2, cacheStatus: { fwd: MISS } } },
    ],
  },
  {
    id: 'cache-status-stale-revalidated',
    title: 'says fwd=stale and fwd-status=304 when it revalidates a stale entry',
    rfc: 'RFC 9211 §2.2 (fwd=stale), §2.3 (fwd-status); RFC 9111 §4.3 (validation)',
    topology: 'single',
    origin: { '/r': { headers: { 'Cache-Control': 'max-age=1', ETag: '"v1"' }, revalidate: true } },
    steps: [
      { do: 'request', path: '/r', expect: { originRequests: 1, cacheStatus: { stored: true } } },
      { do: 'wait', ms: 2200 },
      {
        do: 'request',
        path: '/r',
        expect: {
          status: 200,
          originRequests: 2,
          cacheStatus: { fwd: 'stale', fwdStatus: 304 },
          bodyFromOriginRequest: 1,
        },
      },
    ],
  },
  {
    id: 'cache-status-vary-miss',
    title: 'says fwd=vary-miss when a stored response does not match the request on Vary',
    rfc: 'RFC 9211 §2.2 (fwd=vary-miss); RFC 9111 §4.1',
    topology: 'single',
    origin: { '/v': { headers: { ...FRESH, Vary: 'Accept-Language' } } },
    steps: [
      { do: 'request', path: '/v', headers: { 'Accept-Language': 'en' }, expect: { originRequests: 1 } },
      SETTLE,
      {
        do: 'request',
        path: '/v',
        headers: { 'Accept-Language': 'fr' },
        expect: { originRequests: 2, cacheStatus: { fwd: 'vary-miss' } },
      },
      {
        do: 'request',
        path: '/v',
        headers: { 'Accept-Language': 'en' },
        expect: { originRequests: 2, cacheStatus: { hit: true }, bodyFromOriginRequest: 1 },
      },
    ],
  },
  {
    id: 'cache-status-request-no-cache',
    title: 'says fwd=request when the request forbids using the fresh stored response',
    rfc: 'RFC 9211 §2.2 (fwd=request); RFC 9111 §5.2.1.4 (request no-cache)',
    topology: 'single',
    origin: { '/q': { headers: FRESH } },
    steps: [
      { do: 'request', path: '/q', expect: { originRequests: 1 } },
      SETTLE,
      {
        do: 'request',
        path: '/q',
        headers: { 'Cache-Control': 'no-cache' },
        expect: { originRequests: 2, cacheStatus: { fwd: 'request' } },
      },
    ],
  },
  {
    id: 'cache-status-method',
    title: 'says fwd=method for a POST',
    rfc: 'RFC 9211 §2.2 (fwd=method); RFC 9111 §4 (unsafe methods are forwarded)',
    topology: 'single',
    origin: { '/m': { headers: FRESH } },
    steps: [
      {
        do: 'request',
        path: '/m',
        method: 'POST',
        expect: { originRequests: 1, cacheStatus: { fwd: 'method' } },
      },
    ],
  },

  // CDN-Cache-Control precedence (RFC 9213)
  {
    id: 'cdn-cc-overrides-cache-control',
    title: 'stores by CDN-Cache-Control max-age even when Cache-Control says no-store',
    rfc: 'RFC 9213 §2.1 (a cache MUST ignore Cache-Control when its targeted field is valid)',
    topology: 'single',
    origin: { '/c1': { headers: { 'CDN-Cache-Control': 'max-age=300', 'Cache-Control': 'no-store' } } },
    steps: [
      { do: 'request', path: '/c1', expect: { originRequests: 1, headers: { 'cache-control': 'no-store' } } },
      SETTLE,
      {
        do: 'request',
        path: '/c1',
        expect: { originRequests: 1, cacheStatus: { hit: true }, bodyFromOriginRequest: 1 },
      },
    ],
  },
  {
    id: 'cdn-cc-no-store-wins',
    title: 'does not store when CDN-Cache-Control says no-store and Cache-Control allows caching',
    rfc: 'RFC 9213 §2.1, §3 (CDN caches implement no-store from CDN-Cache-Control)',
    topology: 'single',
    origin: { '/c2': { headers: { 'CDN-Cache-Control': 'no-store', 'Cache-Control': 'max-age=300' } } },
    steps: [
      { do: 'request', path: '/c2', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c2', expect: { originRequests: 2 } },
    ],
  },
  {
    id: 'cdn-cc-shorter-max-age-wins',
    title: 'treats a response as stale after CDN-Cache-Control max-age, not Cache-Control max-age',
    rfc: 'RFC 9213 §2.1; RFC 9111 §4.2.1 (freshness lifetime)',
    topology: 'single',
    origin: { '/c3': { headers: { 'CDN-Cache-Control': 'max-age=1', 'Cache-Control': 'max-age=3600' } } },
    steps: [
      { do: 'request', path: '/c3', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'wait', ms: 2200 },
      { do: 'request', path: '/c3', expect: { originRequests: 2, bodyFromOriginRequest: 2 } },
    ],
  },
  {
    id: 'cdn-cc-invalid-falls-back',
    title: 'falls back to Cache-Control when CDN-Cache-Control is not a valid dictionary',
    rfc: 'RFC 9213 §2.1, §2.2 (invalid targeted field: use Cache-Control)',
    topology: 'single',
    origin: {
      '/c4': { headers: { 'CDN-Cache-Control': 'max-age=300, =broken', 'Cache-Control': 'no-store' } },
    },
    steps: [
      { do: 'request', path: '/c4', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c4', expect: { originRequests: 2 } },
    ],
  },

  {
    id: 'cdn-cc-wrong-type-falls-back',
    title: 'ignores a CDN-Cache-Control max-age of the wrong type (a string) and so does not store',
    rfc: 'RFC 9213 §2.2 (directives parsed as a Structured Fields dictionary; wrong types ignored)',
    topology: 'single',
    origin: { '/c5': { headers: { 'CDN-Cache-Control': 'max-age="300"', 'Cache-Control': 'no-store' } } },
    steps: [
      { do: 'request', path: '/c5', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c5', expect: { originRequests: 2 } },
    ],
  },
  {
    id: 'cdn-cc-extension-directive',
    title: 'reuses a response whose CDN-Cache-Control has an unknown extension beside max-age',
    rfc: 'RFC 9213 §2.2; RFC 9111 §5.2.3 (unknown directives are ignored)',
    topology: 'single',
    origin: { '/c6': { headers: { 'CDN-Cache-Control': 'foobar, max-age=300' } } },
    steps: [
      { do: 'request', path: '/c6', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c6', expect: { originRequests: 1, bodyFromOriginRequest: 1 } },
    ],
  },
  {
    id: 'cdn-cc-private',
    title: 'does not reuse a response with CDN-Cache-Control: private, whatever Cache-Control says',
    rfc: 'RFC 9213 §2.1 (private is implemented from the targeted field); RFC 9111 §5.2.2.7',
    topology: 'single',
    origin: { '/c7': { headers: { 'CDN-Cache-Control': 'private', 'Cache-Control': 'max-age=300' } } },
    steps: [
      { do: 'request', path: '/c7', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c7', expect: { originRequests: 2 } },
    ],
  },
  {
    id: 'cdn-cc-no-cache',
    title: 'does not reuse a response with CDN-Cache-Control: no-cache without validating it',
    rfc: 'RFC 9213 §2.1; RFC 9111 §5.2.2.4 (no-cache: MUST NOT reuse without successful validation)',
    topology: 'single',
    origin: { '/c8': { headers: { 'CDN-Cache-Control': 'no-cache', 'Cache-Control': 'max-age=300' } } },
    steps: [
      { do: 'request', path: '/c8', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c8', expect: { originRequests: 2 } },
    ],
  },
  {
    id: 'cdn-cc-age-beyond-max-age',
    title: 'does not reuse a response whose Age already exceeds its CDN-Cache-Control max-age',
    rfc: 'RFC 9213 §2.1; RFC 9111 §4.2.3 (Age counts in the current age)',
    topology: 'single',
    origin: { '/c9': { headers: { 'CDN-Cache-Control': 'max-age=3600', Age: '7200' } } },
    steps: [
      { do: 'request', path: '/c9', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/c9', expect: { originRequests: 2 } },
    ],
  },

  // Invalidation scope (RFC 9111 §4.4)
  {
    id: 'invalidation-scoped-to-target',
    title: 'an unsafe request to one URL does not stop the fill of another from being stored',
    rfc: 'RFC 9111 §4.4 (invalidation applies to the target URI, Location and Content-Location only)',
    topology: 'single',
    origin: { '/slow': { headers: FRESH, delayMs: 600 }, '/other': { status: 204 } },
    steps: [
      {
        do: 'together',
        requests: [{ path: '/slow' }, { path: '/other', method: 'PUT', startAfterMs: 200 }],
      },
      SETTLE,
      { do: 'request', path: '/slow', expect: { originRequests: 1, cacheStatus: { hit: true } } },
    ],
  },

  // Two tiers (RFC 9111 §4.2.3, §5.1; RFC 9211 §2)
  {
    id: 'tiers-age-accumulates',
    title: 'carries Age across two tiers: the edge adds its own resident time to the shield’s Age',
    rfc: 'RFC 9111 §4.2.3 (age calculation), §5.1 (Age)',
    topology: 'two-tier',
    origin: { '/t': { headers: FRESH } },
    steps: [
      { do: 'request', path: '/t', via: 'shield', expect: { originRequests: 1 } },
      { do: 'wait', ms: 2100 },
      {
        do: 'request',
        path: '/t',
        via: 'edge',
        expect: { originRequests: 1, ageAtLeast: 2, cacheStatusMembers: 2, firstCacheStatus: { hit: true } },
      },
      { do: 'wait', ms: 1100 },
      {
        do: 'request',
        path: '/t',
        via: 'edge',
        expect: { originRequests: 1, ageAtLeast: 3, cacheStatus: { hit: true }, bodyFromOriginRequest: 1 },
      },
    ],
  },
  {
    id: 'tiers-one-origin-fetch',
    title: 'fetches a cold object from the origin once through two tiers, one Cache-Status member each',
    rfc: 'RFC 9211 §2 (one member per cache, origin side first)',
    topology: 'two-tier',
    origin: { '/t2': { headers: FRESH } },
    steps: [
      {
        do: 'request',
        path: '/t2',
        via: 'edge',
        expect: {
          originRequests: 1,
          cacheStatusMembers: 2,
          firstCacheStatus: { stored: true },
          cacheStatus: { stored: true },
        },
      },
      SETTLE,
      { do: 'request', path: '/t2', via: 'edge', expect: { originRequests: 1, cacheStatus: { hit: true } } },
    ],
  },

  // Age parsing (RFC 9111 §5.1, §1.2.2), as the current edition of the HTTP cache test suite reads it
  {
    id: 'age-forms',
    title:
      'ignores an invalid Age, uses the first value of a list or of several lines, and clamps a huge one (stale)',
    rfc: 'RFC 9111 §5.1 (Age), §1.2.2 (delta-seconds: clamp at 2147483648), §4.2.3 (age calculation)',
    topology: 'single',
    origin: {
      '/age-abc': { headers: { 'Cache-Control': 'max-age=3600', Age: 'abc' } },
      '/age-neg': { headers: { 'Cache-Control': 'max-age=3600', Age: '-7200' } },
      '/age-float': { headers: { 'Cache-Control': 'max-age=3600', Age: '7200.0' } },
      '/age-param': { headers: { 'Cache-Control': 'max-age=3600', Age: '7200;foo=bar' } },
      '/age-prefix': { headers: { 'Cache-Control': 'max-age=3600', Age: '0, 7200' } },
      '/age-suffix': { headers: { 'Cache-Control': 'max-age=3600', Age: '7200, 0' } },
      '/age-lines-prefix': { headers: { 'Cache-Control': 'max-age=3600', Age: ['0', '7200'] } },
      '/age-lines-suffix': { headers: { 'Cache-Control': 'max-age=3600', Age: ['7200', '0'] } },
      '/age-dup-0': { headers: { 'Cache-Control': 'max-age=3600', Age: '0, 0' } },
      '/age-lines-dup-0': { headers: { 'Cache-Control': 'max-age=3600', Age: ['0', '0'] } },
      '/age-large': { headers: { 'Cache-Control': 'max-age=3600', Age: '2147483648' } },
      '/age-larger': { headers: { 'Cache-Control': 'max-age=3600', Age: '2147483650' } },
    },
    steps: [
      { do: 'request', path: '/age-abc', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-neg', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-float', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-param', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-prefix', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-suffix', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-lines-prefix', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-lines-suffix', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-dup-0', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-lines-dup-0', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-large', expect: { originRequests: 1 } },
      { do: 'request', path: '/age-larger', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/age-abc', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-neg', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-float', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-param', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-prefix', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-suffix', expect: { originRequests: 2 } },
      { do: 'request', path: '/age-lines-prefix', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-lines-suffix', expect: { originRequests: 2 } },
      { do: 'request', path: '/age-dup-0', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-lines-dup-0', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/age-large', expect: { originRequests: 2 } },
      { do: 'request', path: '/age-larger', expect: { originRequests: 2 } },
    ],
  },

  // Interim responses (RFC 9110 §15.2, RFC 8297)
  {
    id: 'early-hints-forwarded-not-cached',
    title:
      "forwards the origin's 103 Early Hints before the final response; neither stores it nor merges its fields",
    rfc: 'RFC 9110 §15.2 (a proxy MUST forward 1xx responses); RFC 8297 §2 (103 Early Hints); RFC 9111 §3 (only final responses are stored)',
    topology: 'single',
    origin: {
      '/eh': {
        headers: FRESH,
        earlyHints: { link: '</eh.css>; rel=preload; as=style', 'x-hint': 'early' },
        delayMs: 100,
      },
    },
    steps: [
      {
        do: 'request',
        path: '/eh',
        expect: {
          originRequests: 1,
          interim: [{ status: 103, link: '</eh.css>; rel=preload; as=style' }],
          headers: { 'x-hint': null, link: null },
        },
      },
      SETTLE,
      {
        do: 'request',
        path: '/eh',
        expect: {
          originRequests: 1,
          cacheStatus: { hit: true },
          interim: [],
          headers: { 'x-hint': null, link: null },
          bodyFromOriginRequest: 1,
        },
      },
    ],
  },

  // Vary normalisation (RFC 9111 §4.1)
  {
    id: 'accept-language-variants-shared',
    title:
      'requests whose Accept-Language differs only in order, case, spacing or spelling of weights share a variant',
    rfc: 'RFC 9111 §4.1 (normalizing selecting header values known to have identical semantics); RFC 9110 §12.5.4, §12.4.2',
    topology: 'single',
    origin: { '/al': { headers: { ...FRESH, Vary: 'Accept-Language' } } },
    steps: [
      {
        do: 'request',
        path: '/al',
        headers: { 'Accept-Language': 'en, de;q=0.5' },
        expect: { originRequests: 1 },
      },
      SETTLE,
      {
        do: 'request',
        path: '/al',
        headers: { 'Accept-Language': 'DE;q=0.50 ,EN;q=1.0' },
        expect: { originRequests: 1, cacheStatus: { hit: true }, bodyFromOriginRequest: 1 },
      },
      {
        do: 'request',
        path: '/al',
        headers: { 'Accept-Language': 'de, en;q=0.5' },
        expect: { originRequests: 2, bodyFromOriginRequest: 2 },
      },
    ],
  },

  // Expires parsing (RFC 9111 §5.3)
  {
    id: 'expires-letter-case',
    title:
      'reads an Expires whose day, month and GMT are in another letter case; another zone is still invalid',
    rfc: 'RFC 9111 §5.3 (Expires; an invalid date is already expired); RFC 9110 §5.6.7 (HTTP-date)',
    topology: 'single',
    origin: {
      '/ex-upper': { headers: { Expires: 'THU, 18 AUG 2050 02:01:18 GMT' } },
      '/ex-gmt': { headers: { Expires: 'Thu, 18 Aug 2050 02:01:18 gMT' } },
      '/ex-utc': { headers: { Expires: 'Thu, 18 Aug 2050 02:01:18 UTC' } },
    },
    steps: [
      { do: 'request', path: '/ex-upper', expect: { originRequests: 1 } },
      { do: 'request', path: '/ex-gmt', expect: { originRequests: 1 } },
      { do: 'request', path: '/ex-utc', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'request', path: '/ex-upper', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/ex-gmt', expect: { originRequests: 1, cacheStatus: { hit: true } } },
      { do: 'request', path: '/ex-utc', expect: { originRequests: 2 } },
    ],
  },

  // Persistence (RFC 9111 §3, §4.2.3)
  {
    id: 'restart-comes-back-warm',
    title: 'serves a stored response after a restart without asking the origin, with Age still counting',
    rfc: 'RFC 9111 §3 (storing), §4.2.3 (Age keeps counting resident time)',
    topology: 'single',
    origin: { '/w': { headers: FRESH } },
    steps: [
      { do: 'request', path: '/w', expect: { originRequests: 1 } },
      { do: 'wait', ms: 1100 },
      { do: 'restart' },
      {
        do: 'request',
        path: '/w',
        expect: { originRequests: 1, cacheStatus: { hit: true }, ageAtLeast: 1, bodyFromOriginRequest: 1 },
      },
    ],
  },

  // Purge through the admin API (operator invalidation; RFC 9111 §4.4 describes invalidation)
  {
    id: 'purge-url',
    title: 'a URL purge removes every variant of the URL',
    rfc: 'RFC 9111 §4.4 (invalidation), §4.1 (variants under one URL)',
    topology: 'single',
    origin: { '/pu': { headers: { ...FRESH, Vary: 'Accept-Language' } } },
    steps: [
      { do: 'request', path: '/pu', headers: { 'Accept-Language': 'en' }, expect: { originRequests: 1 } },
      { do: 'request', path: '/pu', headers: { 'Accept-Language': 'fr' }, expect: { originRequests: 2 } },
      SETTLE,
      { do: 'purge', body: { urls: [`http://${SITE}/pu`] } },
      { do: 'request', path: '/pu', headers: { 'Accept-Language': 'en' }, expect: { originRequests: 3 } },
      { do: 'request', path: '/pu', headers: { 'Accept-Language': 'fr' }, expect: { originRequests: 4 } },
    ],
  },
  {
    id: 'purge-tag',
    title: 'a tag purge removes the entries carrying the Surrogate-Key and no others',
    rfc: 'RFC 9111 §4.4 (invalidation), by tag through the admin API',
    topology: 'single',
    origin: {
      '/pt1': { headers: { ...FRESH, 'Surrogate-Key': 'group-a shared' } },
      '/pt2': { headers: { ...FRESH, 'Surrogate-Key': 'group-b shared' } },
    },
    steps: [
      { do: 'request', path: '/pt1', expect: { originRequests: 1 } },
      { do: 'request', path: '/pt2', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'purge', body: { tags: ['group-a'] } },
      { do: 'request', path: '/pt1', expect: { originRequests: 2, bodyFromOriginRequest: 2 } },
      { do: 'request', path: '/pt2', expect: { originRequests: 1, cacheStatus: { hit: true } } },
    ],
  },
  {
    id: 'purge-soft-serves-stale',
    title: 'a soft purge marks stale: served under stale-while-revalidate while it revalidates',
    rfc: 'RFC 5861 §3 (stale-while-revalidate); RFC 9111 §4.2.4 (serving stale)',
    topology: 'single',
    origin: { '/ps': { headers: { 'Cache-Control': 'max-age=300, stale-while-revalidate=60' } } },
    steps: [
      { do: 'request', path: '/ps', expect: { originRequests: 1 } },
      SETTLE,
      { do: 'purge', body: { urls: [`http://${SITE}/ps`], soft: true } },
      { do: 'request', path: '/ps', expect: { status: 200, bodyFromOriginRequest: 1 } },
      { do: 'wait', ms: 500 },
      { do: 'request', path: '/ps', expect: { originRequests: 2, bodyFromOriginRequest: 2 } },
    ],
  },
];
