import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeFieldValue, parseVary, secondaryKey } from '../../../../src/cache/policy/vary.ts';

describe('parseVary', () => {
  it('returns no fields for a missing or empty Vary', () => {
    assert.deepEqual(parseVary(undefined), []);
    assert.deepEqual(parseVary(''), []);
    assert.deepEqual(parseVary(' , '), []);
  });

  it('lower-cases, de-duplicates and sorts field names', () => {
    assert.deepEqual(parseVary('User-Agent, Accept-Encoding,accept-encoding , Accept'), [
      'accept',
      'accept-encoding',
      'user-agent',
    ]);
  });

  it('returns * when any member is *', () => {
    assert.equal(parseVary('*'), '*');
    assert.equal(parseVary('Accept, *'), '*');
  });
});

describe('normalizeFieldValue', () => {
  it('reduces Accept-Encoding to the coding it would be answered with, whatever the spelling', () => {
    assert.equal(normalizeFieldValue('accept-encoding', ' Br ,GZIP,  deflate'), 'br');
    assert.equal(normalizeFieldValue('accept-encoding', 'gzip, br'), 'br');
    assert.equal(normalizeFieldValue('accept-encoding', 'br;q=0.5, gzip'), 'gzip');
    assert.equal(normalizeFieldValue('accept-encoding', undefined), 'identity');
    assert.equal(normalizeFieldValue('accept-encoding', 'deflate'), 'identity');
  });

  it('keeps the sorted spelling of an Accept-Encoding no coding of the node satisfies', () => {
    assert.equal(
      normalizeFieldValue('accept-encoding', 'identity;q=0, Deflate'),
      'none:deflate,identity;q=0',
    );
  });

  it('combines several field lines as one list', () => {
    assert.equal(normalizeFieldValue('accept-encoding', ['gzip', 'br']), 'br');
    assert.equal(normalizeFieldValue('accept-language', ['en', 'fr']), 'en,fr');
  });

  it('keeps the order of fields where order carries meaning', () => {
    assert.equal(normalizeFieldValue('accept', 'Text/HTML, */*'), 'text/html,*/*');
    assert.notEqual(normalizeFieldValue('x-list', 'b, a'), normalizeFieldValue('x-list', 'a, b'));
  });

  it('orders Accept-Language ranges by weight, ignoring case and the spelling of weights', () => {
    const base = normalizeFieldValue('accept-language', 'en, de');
    for (const same of ['eN, De', ' en ,   de', 'en;q=1.0, de', 'en;q=1, DE;q=1.000', ['en', 'de']]) {
      assert.equal(normalizeFieldValue('accept-language', same), base, String(same));
    }
    assert.equal(base, 'en,de');
    assert.equal(
      normalizeFieldValue('accept-language', 'fr;q=0.5, EN-us;q=0.9, de'),
      normalizeFieldValue('accept-language', 'de, en-US;q=0.90, fr;q=0.50'),
    );
    assert.equal(
      normalizeFieldValue('accept-language', 'fr;q=0.5, EN-us;q=0.9, de'),
      'de,en-us;q=0.9,fr;q=0.5',
    );
  });

  it('keeps ranges of equal weight in the order the client listed them (RFC 9110 §12.5.4)', () => {
    // An origin may answer the first listed language among equal weights: en, de is English.
    assert.notEqual(
      normalizeFieldValue('accept-language', 'en, de'),
      normalizeFieldValue('accept-language', 'de, en'),
    );
    assert.equal(normalizeFieldValue('accept-language', 'fr;q=0.5, de, en'), 'de,en,fr;q=0.5');
  });

  it('keeps Accept-Language weights that differ, and a list it cannot read, apart', () => {
    assert.notEqual(
      normalizeFieldValue('accept-language', 'en, de;q=0.5'),
      normalizeFieldValue('accept-language', 'de, en;q=0.5'),
    );
    assert.notEqual(
      normalizeFieldValue('accept-language', 'en'),
      normalizeFieldValue('accept-language', 'en, fr'),
    );
    assert.notEqual(
      normalizeFieldValue('accept-language', 'en;q=0'),
      normalizeFieldValue('accept-language', 'en'),
    );
    assert.equal(normalizeFieldValue('accept-language', 'fr;q=2, en'), 'fr;q=2,en');
  });

  it('keeps the case of fields that are not case-insensitive', () => {
    assert.notEqual(normalizeFieldValue('x-token', 'ABC'), normalizeFieldValue('x-token', 'abc'));
  });

  it('tells an absent field from an empty one', () => {
    assert.notEqual(normalizeFieldValue('accept', undefined), normalizeFieldValue('accept', ''));
  });
});

describe('secondaryKey', () => {
  it('is empty without Vary fields', () => {
    assert.equal(secondaryKey([], { accept: 'x' }), '');
  });

  it('differs when a selecting field differs and ignores other fields', () => {
    const a = secondaryKey(['accept-encoding'], { 'accept-encoding': 'gzip', 'user-agent': 'a' });
    const b = secondaryKey(['accept-encoding'], { 'accept-encoding': 'gzip', 'user-agent': 'b' });
    const c = secondaryKey(['accept-encoding'], { 'accept-encoding': 'br' });
    const d = secondaryKey(['accept-encoding'], { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(c, d);
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  it('differs between a request without the field and one with it', () => {
    assert.notEqual(secondaryKey(['accept'], {}), secondaryKey(['accept'], { accept: '' }));
  });
});
