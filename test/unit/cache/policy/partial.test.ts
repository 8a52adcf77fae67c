import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  combineRanges,
  coversWhole,
  isStrongEtag,
  missingSpan,
  parseContentRange,
  rangeWithin,
  spanHeader,
  storablePartial,
} from '../../../../src/cache/policy/partial.ts';

describe('parseContentRange (RFC 9110 §14.4)', () => {
  it('reads first-last/complete, and * for an unknown complete length', () => {
    assert.deepEqual(parseContentRange('bytes 4-9/10'), { start: 4, end: 9, complete: 10 });
    assert.deepEqual(parseContentRange('bytes 0-0/*'), { start: 0, end: 0, complete: undefined });
  });

  it('refuses invalid values: last before first, complete not past last, other units', () => {
    for (const value of [
      undefined,
      'bytes 5-4/10',
      'bytes 0-9/9',
      'bytes */10',
      'items 0-1/2',
      'bytes 0-1',
    ]) {
      assert.equal(parseContentRange(value), undefined, String(value));
    }
  });
});

describe('storablePartial (RFC 9111 §3.3)', () => {
  it('accepts one part whose Content-Length matches its Content-Range', () => {
    assert.deepEqual(storablePartial({ 'content-range': 'bytes 0-4/10', 'content-length': '5' }), {
      start: 0,
      end: 4,
      complete: 10,
    });
  });

  it('refuses a body that disagrees with its Content-Range, and multipart/byteranges', () => {
    assert.equal(storablePartial({ 'content-range': 'bytes 4-9/10', 'content-length': '5' }), undefined);
    assert.equal(
      storablePartial({
        'content-range': 'bytes 0-4/10',
        'content-type': 'multipart/byteranges; boundary=x',
      }),
      undefined,
    );
    assert.equal(storablePartial({ 'content-length': '5' }), undefined);
  });
});

describe('rangeWithin: a Range wholly inside a stored piece', () => {
  const piece = { start: 4, end: 8, complete: 10 };

  it('resolves byte ranges, open ranges and suffixes against the complete length', () => {
    assert.deepEqual(rangeWithin('bytes=5-7', piece), { start: 5, end: 7 });
    assert.deepEqual(rangeWithin('bytes=4-8', piece), { start: 4, end: 8 });
    assert.deepEqual(rangeWithin('bytes=0-9', { start: 0, end: 9, complete: 10 }), { start: 0, end: 9 });
    assert.deepEqual(rangeWithin('bytes=6-', { start: 4, end: 9, complete: 10 }), { start: 6, end: 9 });
    assert.deepEqual(rangeWithin('bytes=-3', { start: 4, end: 9, complete: 10 }), { start: 7, end: 9 });
    assert.deepEqual(rangeWithin('bytes=8-100', { start: 4, end: 9, complete: 10 }), { start: 8, end: 9 });
  });

  it('is undefined for ranges reaching outside the piece', () => {
    for (const header of ['bytes=3-5', 'bytes=6-', 'bytes=-1', 'bytes=-5', 'bytes=8-9']) {
      assert.equal(rangeWithin(header, piece), undefined, header);
    }
  });

  it('is undefined for what a partial entry does not answer: several ranges, other units, junk, no Range', () => {
    for (const header of [undefined, 'bytes=5-6,7-8', 'items=5-6', 'bytes=-0', 'bytes=7-5', 'bytes=-', 'x']) {
      assert.equal(rangeWithin(header, piece), undefined, String(header));
    }
  });

  it('needs the complete length for suffix and open ranges', () => {
    const unknown = { start: 0, end: 4, complete: undefined };
    assert.equal(rangeWithin('bytes=-2', unknown), undefined);
    assert.equal(rangeWithin('bytes=2-', unknown), undefined);
    assert.deepEqual(rangeWithin('bytes=1-3', unknown), { start: 1, end: 3 });
  });
});

describe('missingSpan: what to fetch to answer a Range next to a stored piece (RFC 9111 §3.4)', () => {
  const piece = { start: 4, end: 8, complete: 10 };

  it('asks for the bytes past the piece, before it, or the whole request when it spans both sides', () => {
    assert.deepEqual(missingSpan('bytes=6-9', piece), { start: 9, end: 9 });
    assert.deepEqual(missingSpan('bytes=9-9', piece), { start: 9, end: 9 });
    assert.deepEqual(missingSpan('bytes=5-', piece), { start: 9, end: 9 });
    assert.deepEqual(missingSpan('bytes=-2', piece), { start: 9, end: 9 });
    assert.deepEqual(missingSpan('bytes=0-5', piece), { start: 0, end: 3 });
    assert.deepEqual(missingSpan('bytes=3-3', piece), { start: 3, end: 3 });
    assert.deepEqual(missingSpan('bytes=2-100', piece), { start: 2, end: 9 });
    assert.deepEqual(missingSpan('bytes=-10', piece), { start: 0, end: 9 });
  });

  it('leaves the end open when the complete length is unknown', () => {
    const unknown = { start: 0, end: 4, complete: undefined };
    assert.deepEqual(missingSpan('bytes=5-', unknown), { start: 5, end: undefined });
    assert.deepEqual(missingSpan('bytes=2-', unknown), { start: 5, end: undefined });
    assert.deepEqual(missingSpan('bytes=3-7', unknown), { start: 5, end: 7 });
    assert.equal(missingSpan('bytes=-3', unknown), undefined);
    assert.equal(missingSpan('bytes=1-3', unknown), undefined);
  });

  it('is undefined when nothing is missing, the request is apart from the piece, or cannot be resolved', () => {
    for (const header of [
      undefined,
      'bytes=4-8',
      'bytes=5-6',
      'bytes=0-2',
      'bytes=10-12',
      'bytes=5-6,8-9',
      'items=0-9',
      'bytes=-0',
      'bytes=7-5',
    ]) {
      assert.equal(missingSpan(header, piece), undefined, String(header));
    }
  });

  it('writes the span as a Range value', () => {
    assert.equal(spanHeader({ start: 9, end: 9 }), 'bytes=9-9');
    assert.equal(spanHeader({ start: 5, end: undefined }), 'bytes=5-');
  });
});

describe('combineRanges: the union of two pieces of one representation', () => {
  it('joins pieces that touch or overlap, in either order', () => {
    const stored = { start: 4, end: 8, complete: 10 };
    assert.deepEqual(combineRanges(stored, { start: 9, end: 9, complete: 10 }), {
      start: 4,
      end: 9,
      complete: 10,
    });
    assert.deepEqual(combineRanges(stored, { start: 0, end: 3, complete: 10 }), {
      start: 0,
      end: 8,
      complete: 10,
    });
    assert.deepEqual(combineRanges(stored, { start: 2, end: 6, complete: 10 }), {
      start: 2,
      end: 8,
      complete: 10,
    });
    assert.deepEqual(combineRanges(stored, { start: 0, end: 9, complete: 10 }), {
      start: 0,
      end: 9,
      complete: 10,
    });
    assert.deepEqual(combineRanges(stored, { start: 5, end: 6, complete: 10 }), stored);
  });

  it('takes the complete length either piece knows', () => {
    assert.deepEqual(
      combineRanges({ start: 0, end: 4, complete: undefined }, { start: 5, end: 9, complete: 10 }),
      {
        start: 0,
        end: 9,
        complete: 10,
      },
    );
    assert.deepEqual(
      combineRanges({ start: 0, end: 4, complete: 10 }, { start: 5, end: 7, complete: undefined }),
      {
        start: 0,
        end: 7,
        complete: 10,
      },
    );
  });

  it('refuses pieces apart, of different complete lengths, or past the complete length', () => {
    assert.equal(
      combineRanges({ start: 0, end: 3, complete: 10 }, { start: 5, end: 9, complete: 10 }),
      undefined,
    );
    assert.equal(
      combineRanges({ start: 6, end: 9, complete: 10 }, { start: 0, end: 4, complete: 10 }),
      undefined,
    );
    assert.equal(
      combineRanges({ start: 0, end: 4, complete: 10 }, { start: 5, end: 9, complete: 12 }),
      undefined,
    );
    assert.equal(
      combineRanges({ start: 0, end: 4, complete: 8 }, { start: 5, end: 9, complete: undefined }),
      undefined,
    );
  });

  it('knows when the union is the whole representation', () => {
    assert.equal(coversWhole({ start: 0, end: 9, complete: 10 }), true);
    assert.equal(coversWhole({ start: 1, end: 9, complete: 10 }), false);
    assert.equal(coversWhole({ start: 0, end: 8, complete: 10 }), false);
    assert.equal(coversWhole({ start: 0, end: 9, complete: undefined }), false);
  });
});

describe('isStrongEtag (RFC 9110 §8.8.3)', () => {
  it('accepts only strong entity tags', () => {
    assert.equal(isStrongEtag('"v1"'), true);
    assert.equal(isStrongEtag('""'), true);
    assert.equal(isStrongEtag('W/"v1"'), false);
    assert.equal(isStrongEtag('v1'), false);
    assert.equal(isStrongEtag(undefined), false);
  });
});
