import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';

const SITE = {
  origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
  sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
};

describe('compression configuration', () => {
  it('defaults to on: zstd, br, gzip from 1 KiB at fast levels', () => {
    const result = validateConfig(SITE);
    assert.ok('config' in result);
    const compression = result.config.compression;
    assert.equal(compression.enabled, true);
    assert.deepEqual(compression.encodings, ['zstd', 'br', 'gzip']);
    assert.equal(compression.minSize, 1024);
    assert.deepEqual(compression.levels, { gzip: 1, br: 1, zstd: 3 });
    assert.deepEqual(result.config.sites[0]?.compression, { private: false });
  });

  it('takes sizes with units and a per-site override', () => {
    const result = validateConfig({
      ...SITE,
      sites: [{ ...SITE.sites[0], compression: { enabled: false } }],
      compression: { minSize: '2KiB', encodings: ['br', 'gzip'], types: ['application/x-ndjson'] },
    });
    assert.ok('config' in result);
    assert.equal(result.config.compression.minSize, 2048);
    assert.equal(result.config.sites[0]?.compression.enabled, false);
  });

  it('reports an unknown coding, a coding listed twice, a level out of range and a bad type, each with its path', () => {
    const result = validateConfig({
      ...SITE,
      compression: {
        encodings: ['br', 'deflate'],
        levels: { br: 12 },
        types: ['not a type'],
      },
      sites: [{ ...SITE.sites[0], compression: { level: 3 } }],
    });
    assert.ok('problems' in result);
    const paths = result.problems.map((p) => p.path);
    for (const path of [
      'compression.encodings[1]',
      'compression.levels.br',
      'compression.types[0]',
      'sites[0].compression',
    ])
      assert.ok(paths.includes(path), `${path} in ${paths.join()}`);
    const twice = validateConfig({ ...SITE, compression: { encodings: ['br', 'br'] } });
    assert.ok('problems' in twice);
    assert.deepEqual(
      twice.problems.map((p) => p.path),
      ['compression.encodings'],
    );
  });
});
