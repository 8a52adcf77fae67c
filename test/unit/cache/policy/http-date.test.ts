import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHttpDate, parseExpires, parseHttpDate } from '../../../../src/cache/policy/http-date.ts';

const EXPECTED = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('parseHttpDate', () => {
  it('reads IMF-fixdate', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), EXPECTED);
  });

  it('reads the obsolete RFC 850 form', () => {
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), EXPECTED);
  });

  it('reads the obsolete asctime form, with a space-padded day', () => {
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), EXPECTED);
  });

  it('ignores surrounding whitespace', () => {
    assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT '), EXPECTED);
  });

  it('returns undefined for junk, "0", other zones and other formats', () => {
    for (const value of [
      undefined,
      '',
      '0',
      '-1',
      'tomorrow',
      'Sun, 06 Nov 1994 08:49:37 PST',
      'Sun, 6 Nov 1994 08:49:37 GMT',
      '1994-11-06T08:49:37Z',
      'sun, 06 nov 1994 08:49:37 gmt',
    ]) {
      assert.equal(parseHttpDate(value), undefined, String(value));
    }
  });

  it('regression: a well-formed but impossible date is undefined, not NaN', () => {
    for (const value of [
      'Mon, 32 Jan 2026 00:00:00 GMT',
      'Thu, 01 Jan 2026 25:00:00 GMT',
      'Mon, 30 Feb 2026 00:00:00 GMT',
      'Monday, 30-Feb-26 00:00:00 GMT',
      'Mon Feb 30 00:00:00 2026',
    ]) {
      assert.equal(parseHttpDate(value), undefined, value);
    }
  });

  it('formats IMF-fixdate that parses back to the same instant', () => {
    assert.equal(formatHttpDate(EXPECTED), 'Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(parseHttpDate(formatHttpDate(EXPECTED)), EXPECTED);
  });
});

describe('parseHttpDate, the same value again', () => {
  it('gives each value its own instant, whatever was parsed just before', () => {
    const a = 'Sat, 05 Dec 2026 07:40:00 GMT';
    const b = 'Sat, 05 Dec 2026 07:40:01 GMT';
    const feb30 = 'Mon, 30 Feb 2026 07:40:00 GMT';
    for (let round = 0; round < 2; round++) {
      assert.equal(parseHttpDate(a), Date.UTC(2026, 11, 5, 7, 40, 0));
      assert.equal(parseHttpDate(a), Date.UTC(2026, 11, 5, 7, 40, 0));
      assert.equal(parseHttpDate(b), Date.UTC(2026, 11, 5, 7, 40, 1));
      assert.equal(parseHttpDate(feb30), undefined);
      assert.equal(parseHttpDate(feb30), undefined);
      assert.equal(parseHttpDate(' Sat, 05 Dec 2026 07:40:00 GMT '), Date.UTC(2026, 11, 5, 7, 40, 0));
      assert.equal(
        parseHttpDate('Sunday, 06-Dec-26 07:40:00 GMT', Date.UTC(2026, 0, 1)),
        Date.UTC(2026, 11, 6, 7, 40),
      );
    }
  });
});

describe('parseHttpDate two-digit years', () => {
  it('reads RFC 850 years against the reference instant, not the wall clock', () => {
    const in2090 = Date.UTC(2090, 0, 1);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', in2090), Date.UTC(2094, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), EXPECTED);
  });
});

describe('parseExpires', () => {
  const FUTURE = Date.UTC(2050, 7, 18, 2, 1, 18);

  it('reads the day name, the month name and GMT in any letter case', () => {
    for (const value of [
      'Thu, 18 Aug 2050 02:01:18 GMT',
      'THU, 18 Aug 2050 02:01:18 GMT',
      'Thu, 18 AUG 2050 02:01:18 GMT',
      'Thu, 18 Aug 2050 02:01:18 gMT',
      'thu, 18 aug 2050 02:01:18 gmt',
      'THURSDAY, 18-AUG-50 02:01:18 gmt',
      'THU AUG 18 02:01:18 2050',
    ]) {
      assert.equal(parseExpires(value, Date.UTC(2026, 0, 1)), FUTURE, value);
    }
  });

  it('keeps the rest of the grammar strict: other zones, a missing comma, a one-digit hour, "0"', () => {
    for (const value of [
      undefined,
      '0',
      'Thu, 18 Aug 2050 02:01:18 UTC',
      'Thu, 18 Aug 2050 02:01:18 AEST',
      'Thu 18 Aug 2050 02:01:18 GMT',
      'Thu, 18 Aug 2050 2:01:18 GMT',
      'Thu, 18  Aug  2050 02:01:18 GMT',
      'Thu, 18 Aug 2050 02.01.18 GMT',
      'Thu, 18 Aux 2050 02:01:18 GMT',
    ]) {
      assert.equal(parseExpires(value), undefined, String(value));
    }
  });

  it('leaves parseHttpDate exact: letter case still matters for Date and Last-Modified', () => {
    assert.equal(parseHttpDate('THU, 18 AUG 2050 02:01:18 GMT'), undefined);
  });
});
