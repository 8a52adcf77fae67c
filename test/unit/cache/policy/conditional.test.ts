import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  etagMatches,
  ifRangeMatches,
  isConditional,
  notModified,
  requestedRange,
} from '../../../../src/cache/policy/conditional.ts';

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const LM = 'Tue, 01 Dec 2026 10:00:00 GMT';
const stored = { status: 200, etag: '"abc"', lastModified: LM, responseTime: NOW - 60_000, size: 1000 };

describe('etagMatches (RFC 9110 §8.8.3.2 weak comparison)', () => {
  it('matches regardless of W/ on either side, in a list', () => {
    assert.equal(etagMatches('"x", W/"abc"', '"abc"'), true);
    assert.equal(etagMatches('"abc"', 'W/"abc"'), true);
    assert.equal(etagMatches('"x", "y"', '"abc"'), false);
  });

  it('keeps a comma inside an entity tag, and reads a backslash as part of it (§8.8.3)', () => {
    assert.equal(etagMatches('"v1,gzip"', '"v1,gzip"'), true);
    assert.equal(etagMatches('"old", W/"v1,gzip" ,"x"', '"v1,gzip"'), true);
    assert.equal(etagMatches('"v1", "gzip"', '"v1,gzip"'), false);
    assert.equal(etagMatches('"a\\", "b"', '"b"'), true);
    assert.equal(etagMatches('unquoted-tag', 'unquoted-tag'), true);
  });

  it('matches * with any stored representation, with an entity tag or without (RFC 9110 §13.1.2)', () => {
    assert.equal(etagMatches(' * ', '"abc"'), true);
    assert.equal(etagMatches('*', undefined), true);
    assert.equal(etagMatches('"abc"', undefined), false);
  });
});

describe('notModified (RFC 9110 §13.2.2)', () => {
  it('answers If-None-Match first and ignores If-Modified-Since beside it', () => {
    const fields = { 'if-none-match': '"other"', 'if-modified-since': 'Wed, 02 Dec 2026 10:00:00 GMT' };
    assert.equal(notModified('GET', fields, stored, undefined, NOW), false);
    assert.equal(notModified('HEAD', { 'if-none-match': '"abc"' }, stored, undefined, NOW), true);
  });

  it('compares If-Modified-Since with Last-Modified, then Date, then the time received', () => {
    const ims = { 'if-modified-since': LM };
    assert.equal(notModified('GET', ims, stored, undefined, NOW), true);
    assert.equal(
      notModified('GET', { 'if-modified-since': 'Mon, 30 Nov 2026 10:00:00 GMT' }, stored, undefined, NOW),
      false,
    );
    const noLm = { ...stored, lastModified: undefined };
    assert.equal(notModified('GET', ims, noLm, 'Tue, 01 Dec 2026 09:00:00 GMT', NOW), true);
    assert.equal(notModified('GET', ims, noLm, undefined, NOW), false);
  });

  it('never answers 304 for other methods, other statuses or an invalid date', () => {
    assert.equal(notModified('POST', { 'if-none-match': '"abc"' }, stored, undefined, NOW), false);
    assert.equal(
      notModified('GET', { 'if-none-match': '"abc"' }, { ...stored, status: 404 }, undefined, NOW),
      false,
    );
    assert.equal(notModified('GET', { 'if-modified-since': 'yesterday' }, stored, undefined, NOW), false);
  });

  it('says which requests carry a precondition', () => {
    assert.equal(isConditional({}), false);
    assert.equal(isConditional({ 'if-modified-since': LM }), true);
  });
});

describe('requestedRange (RFC 9110 §14.2)', () => {
  it('reads first-last, open-ended and suffix ranges, clamped to the size', () => {
    assert.deepEqual(requestedRange('GET', { range: 'bytes=0-99' }, stored), { start: 0, end: 99 });
    assert.deepEqual(requestedRange('GET', { range: 'bytes=900-' }, stored), { start: 900, end: 999 });
    assert.deepEqual(requestedRange('GET', { range: 'bytes=-100' }, stored), { start: 900, end: 999 });
    assert.deepEqual(requestedRange('GET', { range: 'bytes=500-5000' }, stored), { start: 500, end: 999 });
  });

  it('is unsatisfiable past the end or for an empty suffix', () => {
    assert.equal(requestedRange('GET', { range: 'bytes=1000-' }, stored), 'unsatisfiable');
    assert.equal(requestedRange('GET', { range: 'bytes=-0' }, stored), 'unsatisfiable');
  });

  it('answers a suffix of an empty representation with the whole of it, never bytes 0--1/0', () => {
    const empty = { ...stored, size: 0 };
    assert.equal(requestedRange('GET', { range: 'bytes=-500' }, empty), undefined);
    assert.equal(requestedRange('GET', { range: 'bytes=0-' }, empty), 'unsatisfiable');
    assert.equal(requestedRange('GET', { range: 'bytes=-0' }, empty), 'unsatisfiable');
  });

  it('answers the whole body for several ranges, other units, HEAD and non-200', () => {
    assert.equal(requestedRange('GET', { range: 'bytes=0-1,5-6' }, stored), undefined);
    assert.equal(requestedRange('GET', { range: 'items=0-1' }, stored), undefined);
    assert.equal(requestedRange('HEAD', { range: 'bytes=0-1' }, stored), undefined);
    assert.equal(requestedRange('GET', { range: 'bytes=0-1' }, { ...stored, status: 404 }), undefined);
  });

  it('honours If-Range only for an equal strong tag or an equal date (§13.1.5)', () => {
    assert.deepEqual(requestedRange('GET', { range: 'bytes=0-1', 'if-range': '"abc"' }, stored), {
      start: 0,
      end: 1,
    });
    assert.equal(requestedRange('GET', { range: 'bytes=0-1', 'if-range': '"zzz"' }, stored), undefined);
    assert.equal(ifRangeMatches('W/"abc"', { etag: 'W/"abc"' }), false);
    assert.equal(ifRangeMatches(LM, { lastModified: LM }), true);
  });
});
