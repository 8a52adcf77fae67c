import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  deltaSeconds,
  invalidDeltaSeconds,
  parseCacheControl,
  parseTargetedField,
} from '../../../../src/cache/policy/cache-control.ts';

const entries = (value: string | undefined) => [...parseCacheControl(value)];

describe('parseCacheControl', () => {
  it('returns no directives for a missing or empty field', () => {
    assert.equal(parseCacheControl(undefined).size, 0);
    assert.equal(parseCacheControl('').size, 0);
  });

  it('reads directives with and without arguments', () => {
    assert.deepEqual(entries('public, max-age=60, no-transform'), [
      ['public', ''],
      ['max-age', '60'],
      ['no-transform', ''],
    ]);
  });

  it('compares directive names case-insensitively and keeps arguments as sent', () => {
    assert.deepEqual(entries('Max-Age=60, NO-CACHE="Set-Cookie"'), [
      ['max-age', '60'],
      ['no-cache', 'Set-Cookie'],
    ]);
  });

  it('unquotes quoted arguments, including commas and escapes inside them', () => {
    assert.deepEqual(entries('private="set-cookie, x-user", max-age="30", x="a\\"b"'), [
      ['private', 'set-cookie, x-user'],
      ['max-age', '30'],
      ['x', 'a"b'],
    ]);
  });

  it('tolerates whitespace around names, equals signs and commas', () => {
    assert.deepEqual(entries('  max-age = 60 ,  public  '), [
      ['max-age', '60'],
      ['public', ''],
    ]);
  });

  it('keeps the first occurrence of a duplicated directive (§4.2.1)', () => {
    assert.equal(parseCacheControl('max-age=60, max-age=3600').get('max-age'), '60');
    assert.equal(parseCacheControl('MAX-AGE=5, max-age=10').get('max-age'), '5');
  });

  it('regression: leading empty members no longer end parsing before the first directive', () => {
    assert.deepEqual(entries(',, public,,max-age=1,'), [
      ['public', ''],
      ['max-age', '1'],
    ]);
  });

  it('regression: junk in the middle no longer hides the directives after it (no-store was lost)', () => {
    assert.deepEqual(entries('max-age=60, x y, no-store'), [
      ['max-age', '60'],
      ['x', ''],
      ['y', ''],
      ['no-store', ''],
    ]);
    assert.equal(parseCacheControl('max-age=60, "junk", private').has('private'), true);
    assert.equal(parseCacheControl('max-age=60 public, no-store').has('no-store'), true);
  });

  it('regression: a quoted comma stays inside its value', () => {
    assert.deepEqual(entries('x y="a, no-store", public'), [
      ['x', ''],
      ['y', 'a, no-store'],
      ['public', ''],
    ]);
    assert.equal(parseCacheControl('"a, no-store" private').has('no-store'), false);
  });

  it('separates directives at whitespace as at a comma: a missing comma never hides a restriction', () => {
    assert.deepEqual(entries('private no-cache'), [
      ['private', ''],
      ['no-cache', ''],
    ]);
    assert.deepEqual(entries('max-age=600, private no-store'), [
      ['max-age', '600'],
      ['private', ''],
      ['no-store', ''],
    ]);
    assert.deepEqual(entries('max-age = 600\tpublic'), [
      ['max-age', '600'],
      ['public', ''],
    ]);
    assert.deepEqual(entries('no-cache="set-cookie, x-a" private'), [
      ['no-cache', 'set-cookie, x-a'],
      ['private', ''],
    ]);
    assert.equal(parseCacheControl('"junk" no-store').has('no-store'), true);
  });
});

describe('deltaSeconds', () => {
  const cc = parseCacheControl('a=0, b=120, c=99999999999999999999, d=-1, e=1.5, f, g=abc, h=007');

  it('reads non-negative integers', () => {
    assert.equal(deltaSeconds(cc, 'a'), 0);
    assert.equal(deltaSeconds(cc, 'b'), 120);
    assert.equal(deltaSeconds(cc, 'h'), 7);
  });

  it('caps a value too large to represent at 2147483648 (§1.2.2)', () => {
    assert.equal(deltaSeconds(cc, 'c'), 2147483648);
    assert.equal(deltaSeconds(parseCacheControl('x=2147483649'), 'x'), 2147483648);
  });

  it('returns undefined for negative, fractional, empty, non-numeric or absent values', () => {
    for (const name of ['d', 'e', 'f', 'g', 'missing']) assert.equal(deltaSeconds(cc, name), undefined, name);
  });

  it('invalidDeltaSeconds flags present-but-invalid values only', () => {
    assert.deepEqual(
      ['a', 'd', 'e', 'f', 'g', 'missing'].map((name) => invalidDeltaSeconds(cc, name)),
      [false, true, true, true, true, false],
    );
  });
});

describe('parseTargetedField (RFC 9213, an RFC 8941 dictionary)', () => {
  it('returns undefined for an absent or empty field', () => {
    assert.equal(parseTargetedField(undefined), undefined);
    assert.equal(parseTargetedField('   '), undefined);
  });

  it('reads integers, tokens, strings and booleans', () => {
    assert.deepEqual(
      [...parseTargetedField('max-age=60, no-store, private="x", foo=bar, b=?1, c=?0')!],
      [
        ['max-age', '60'],
        ['no-store', ''],
        ['private', 'x'],
        ['foo', 'bar'],
        ['b', ''],
        ['c', 'false'],
      ],
    );
  });

  it('ignores parameters on members', () => {
    assert.equal(parseTargetedField('max-age=60;foo=1;bar, public')?.get('max-age'), '60');
  });

  it('keeps the last instance of a key, as dictionaries do (RFC 8941 §4.2.2)', () => {
    assert.equal(parseTargetedField('max-age=60, max-age=10')?.get('max-age'), '10');
  });

  it('ignores the whole field when any member is invalid', () => {
    for (const value of [
      'Max-Age=60', // keys are lower case
      'max-age=60,', // trailing comma
      'max-age=60,,public', // empty member
      'max-age=60 public', // missing comma
      'max-age="60', // unterminated string
      '1max-age=60', // key must start with a letter or *
      'max-age=1234567890123456', // integer longer than 15 digits
      'max-age=@', // not an item
    ]) {
      assert.equal(parseTargetedField(value), undefined, value);
    }
  });

  it('regression: a string holding a comma no longer makes a valid field invalid', () => {
    assert.deepEqual(
      [...parseTargetedField('private="set-cookie, x-user", max-age=60')!],
      [
        ['private', 'set-cookie, x-user'],
        ['max-age', '60'],
      ],
    );
  });

  it('ignores a max-age whose value is not an Integer (RFC 9213 §2.2), falling back when nothing is left', () => {
    assert.equal(parseTargetedField('max-age=60.5'), undefined);
    assert.equal(parseTargetedField('max-age="300"'), undefined);
    const rest = parseTargetedField('max-age="300", no-store')!;
    assert.equal(rest.has('max-age'), false);
    assert.equal(rest.has('no-store'), true);
    assert.equal(deltaSeconds(parseTargetedField('s-maxage=30')!, 's-maxage'), 30);
    assert.equal(invalidDeltaSeconds(parseTargetedField('s-maxage=30')!, 's-maxage'), false);
  });
});
