import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  acceptsCoding,
  acceptsNothing,
  negotiateEncoding,
  parseAcceptEncoding,
} from '../../../../src/cache/policy/accept-encoding.ts';

describe('parseAcceptEncoding', () => {
  it('reads codings with their weights, lower-cased, x-gzip as gzip', () => {
    const weights = parseAcceptEncoding('GZIP;q=0.5, Br , x-gzip;q=0.8, identity;q=0');
    assert.deepEqual(
      [...weights],
      [
        ['gzip', 800],
        ['br', 1000],
        ['identity', 0],
      ],
    );
  });

  it('ignores members with an invalid qvalue instead of guessing', () => {
    assert.deepEqual(
      [...parseAcceptEncoding('br;q=2, gzip;q=0.0001, zstd;q=abc, deflate;q=0.25')],
      [['deflate', 250]],
    );
  });

  it('combines several field lines as one list', () => {
    assert.deepEqual(
      [...parseAcceptEncoding(['gzip', 'br;q=0.1'])],
      [
        ['gzip', 1000],
        ['br', 100],
      ],
    );
  });
});

describe('negotiateEncoding', () => {
  const cases: Array<[string | undefined, string | null]> = [
    [undefined, 'identity'],
    ['', 'identity'],
    ['identity', 'identity'],
    ['gzip', 'gzip'],
    ['gzip, deflate, br', 'br'],
    ['gzip, br', 'br'],
    ['gzip, deflate, br, zstd', 'zstd'],
    ['br;q=0.5, gzip', 'gzip'],
    ['br;q=0.5, gzip;q=0.5', 'br'],
    ['gzip;q=0, br;q=0', 'identity'],
    ['gzip;q=0.5, identity', 'identity'],
    ['gzip, identity;q=0.5', 'gzip'],
    ['deflate', 'identity'],
    ['*', 'zstd'],
    ['*;q=0.5, gzip', 'gzip'],
    ['*;q=0, gzip', 'gzip'],
    ['identity;q=0', null],
    ['*;q=0', null],
    ['deflate, identity;q=0', null],
    ['*;q=0, identity', 'identity'],
    ['br;q=1.000, gzip;q=0.999', 'br'],
  ];
  for (const [value, expected] of cases) {
    it(`answers ${JSON.stringify(expected)} to ${JSON.stringify(value)}`, () => {
      assert.equal(negotiateEncoding(value), expected);
    });
  }

  it("breaks ties by the server's preference", () => {
    assert.equal(negotiateEncoding('gzip, br, zstd', ['gzip', 'br']), 'gzip');
    assert.equal(negotiateEncoding('zstd', ['br', 'gzip']), 'identity');
    assert.equal(negotiateEncoding('zstd, identity;q=0', ['br', 'gzip']), null);
  });
});

describe('acceptsCoding', () => {
  it('takes identity unless identity;q=0 or *;q=0 excludes it', () => {
    assert.equal(acceptsCoding(undefined, 'identity'), true);
    assert.equal(acceptsCoding('br', 'identity'), true);
    assert.equal(acceptsCoding('br, identity;q=0', 'identity'), false);
    assert.equal(acceptsCoding('*;q=0', 'identity'), false);
    assert.equal(acceptsCoding('*;q=0, identity;q=0.1', 'identity'), true);
  });

  it('takes a coding listed with a weight above 0, or covered by *', () => {
    assert.equal(acceptsCoding('gzip', 'gzip'), true);
    assert.equal(acceptsCoding('gzip', 'br'), false);
    assert.equal(acceptsCoding('gzip;q=0', 'gzip'), false);
    assert.equal(acceptsCoding('*', 'zstd'), true);
  });
});

describe('acceptsNothing', () => {
  it('is true only when identity is excluded and every coding named has weight 0', () => {
    for (const value of ['identity;q=0', '*;q=0', 'gzip;q=0, identity;q=0', 'br;q=0, *;q=0'])
      assert.equal(acceptsNothing(value), true, value);
    for (const value of [
      undefined,
      '',
      'gzip',
      'deflate, identity;q=0',
      '*;q=0, identity',
      'br, identity;q=0',
    ])
      assert.equal(acceptsNothing(value), false, String(value));
  });
});
