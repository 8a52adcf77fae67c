import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWeakEtag, selectedForUpdate } from '../../../../src/cache/policy/update.ts';

const LM = 'Tue, 01 Dec 2026 10:00:00 GMT';

describe('selectedForUpdate (RFC 9111 §4.3.4)', () => {
  it('does not update a stored response that lacks the strong validator a 304 carries', () => {
    assert.equal(selectedForUpdate({}, { etag: '"v2"' }), false);
    assert.equal(selectedForUpdate({ lastModified: LM }, { etag: '"v2"', lastModified: LM }), false);
  });

  it('updates a stored response carrying the same strong validator', () => {
    assert.equal(selectedForUpdate({ etag: '"v1"' }, { etag: '"v1"' }), true);
  });

  it('does not update on a different strong validator', () => {
    assert.equal(selectedForUpdate({ etag: '"v1"' }, { etag: '"v2"' }), false);
  });

  it('treats a stored weak tag as not the same strong validator', () => {
    assert.equal(selectedForUpdate({ etag: 'W/"v1"' }, { etag: '"v1"' }), false);
  });

  it('matches a weak validator by weak comparison', () => {
    assert.equal(selectedForUpdate({ etag: '"v1"' }, { etag: 'W/"v1"' }), true);
    assert.equal(selectedForUpdate({ etag: 'W/"v1"' }, { etag: 'W/"v1"' }), true);
    assert.equal(selectedForUpdate({ etag: 'W/"v1"' }, { etag: 'W/"v2"' }), false);
    assert.equal(selectedForUpdate({}, { etag: 'W/"v1"' }), false);
  });

  it('compares Last-Modified when the 304 carries no entity tag', () => {
    assert.equal(selectedForUpdate({ lastModified: LM }, { lastModified: LM }), true);
    assert.equal(
      selectedForUpdate({ lastModified: LM }, { lastModified: 'Wed, 02 Dec 2026 10:00:00 GMT' }),
      false,
    );
  });

  it('updates on a 304 with no validator at all', () => {
    assert.equal(selectedForUpdate({ etag: '"v1"' }, {}), true);
    assert.equal(selectedForUpdate({}, {}), true);
  });

  it('tells weak tags from strong ones', () => {
    assert.equal(isWeakEtag('W/"a"'), true);
    assert.equal(isWeakEtag('"a"'), false);
  });
});
