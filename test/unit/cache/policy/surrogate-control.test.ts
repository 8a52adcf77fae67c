import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deltaSeconds } from '../../../../src/cache/policy/cache-control.ts';
import { parseSurrogateControl } from '../../../../src/cache/policy/surrogate-control.ts';

function parse(value: string | undefined, name = 'strata'): [string, string][] | undefined {
  const directives = parseSurrogateControl(value, name);
  return directives === undefined ? undefined : [...directives];
}

describe('parseSurrogateControl (W3C Edge Architecture §2.2)', () => {
  it('reads directives and their arguments, names case-insensitively', () => {
    assert.deepEqual(parse('max-age=3600'), [['max-age', '3600']]);
    assert.deepEqual(parse('MaX-aGe=60, No-Store'), [
      ['max-age', '60'],
      ['no-store', ''],
    ]);
    assert.deepEqual(parse('content="ESI/1.0", stale-while-revalidate=30'), [
      ['content', 'ESI/1.0'],
      ['stale-while-revalidate', '30'],
    ]);
  });

  it('is undefined when absent, empty, or when nothing in it applies to us', () => {
    assert.equal(parse(undefined), undefined);
    assert.equal(parse('  '), undefined);
    assert.equal(parse('max-age=3600;not-for-you'), undefined);
    assert.equal(parse('max-age =100'), undefined);
  });

  it('skips a member it cannot read and keeps the others (lenient)', () => {
    assert.deepEqual(parse('foobar, max-age=3600'), [
      ['foobar', ''],
      ['max-age', '3600'],
    ]);
    assert.deepEqual(parse('max-age= 100, @@, no-store'), [['no-store', '']]);
  });

  it('reads directives separated by whitespace where a comma is missing, never losing a no-store', () => {
    assert.deepEqual(parse('no-store max-age=60'), [
      ['no-store', ''],
      ['max-age', '60'],
    ]);
    assert.deepEqual(parse('max-age=60;strata no-store'), [
      ['max-age', '60'],
      ['no-store', ''],
    ]);
    assert.deepEqual(parse('max-age=60;other no-store-remote'), [['no-store', '']]);
    // A quoted value keeps its spaces; a piece that is no directive still skips the member.
    assert.deepEqual(parse('content="ESI/1.0 ESI-Inline/1.0"'), [['content', 'ESI/1.0 ESI-Inline/1.0']]);
    assert.equal(parse('max-age= 100'), undefined);
  });

  it('honours directives targeted at our name, case-insensitively, and ignores those for others', () => {
    assert.deepEqual(parse('max-age=3600;strata'), [['max-age', '3600']]);
    assert.deepEqual(parse('max-age=3600;Edge-1', 'edge-1'), [['max-age', '3600']]);
    assert.deepEqual(parse('no-store;other, max-age=60'), [['max-age', '60']]);
  });

  it('lets a directive targeted at us win over the same directive untargeted, in either order', () => {
    assert.deepEqual(parse('max-age=60, max-age=3600;strata'), [['max-age', '3600']]);
    assert.deepEqual(parse('max-age=3600;strata, max-age=60'), [['max-age', '3600']]);
    assert.deepEqual(parse('max-age=60, max-age=30'), [['max-age', '60']]);
  });

  it('reads max-age=N+M as max-age N and stale-if-error M (§2.2.3), and ignores a malformed max-age', () => {
    assert.deepEqual(parse('max-age=30+600'), [
      ['max-age', '30'],
      ['stale-if-error', '600'],
    ]);
    assert.equal(parse('max-age=abc'), undefined);
    assert.equal(parse('max-age=-1'), undefined);
    assert.equal(parse('max-age=1.5'), undefined);
  });

  it('caps a huge max-age like any delta-seconds', () => {
    const directives = parseSurrogateControl('max-age=99999999999', 'strata')!;
    assert.equal(deltaSeconds(directives, 'max-age'), 2147483648);
  });

  it('reads no-store-remote as no-store: an edge node cannot tell how near the origin it is (§2.2.2)', () => {
    assert.deepEqual(parse('no-store-remote'), [['no-store', '']]);
  });
});
