import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';

const SECRET = 'fleet-secret-for-tiers-0123456789abcdef';
const origins = [
  { name: 'shield-1', url: 'http://127.0.0.1:1', tier: 'parent' },
  { name: 'shield-2', url: 'http://127.0.0.1:2', tier: 'parent' },
  { name: 'origin', url: 'http://127.0.0.1:3' },
];

function problems(raw: unknown): Record<string, string> {
  const result = validateConfig(raw);
  assert.ok('problems' in result, 'expected the config to be refused');
  return Object.fromEntries(result.problems.map((p) => [p.path, p.message]));
}

describe('tiers configuration', () => {
  it('hashes the cache key over parent tiers by default, keeps latency for real origins', () => {
    const result = validateConfig({
      origins,
      tiers: { secret: SECRET },
      sites: [
        { name: 'edge', hosts: ['a.example.com'], origins: ['shield-1', 'shield-2'] },
        { name: 'direct', hosts: ['b.example.com'], origins: ['origin'] },
        { name: 'chosen', hosts: ['c.example.com'], origins: ['shield-1', 'shield-2'], selection: 'latency' },
      ],
    });
    assert.ok('config' in result);
    assert.deepEqual(
      result.config.sites.map((site) => [site.selection, site.goDirect]),
      [
        ['hash', false],
        ['latency', false],
        ['latency', false],
      ],
    );
    assert.deepEqual(
      { maxHops: result.config.tiers.maxHops, maxSkew: result.config.tiers.maxSkew },
      { maxHops: 3, maxSkew: 30_000 },
    );
  });

  it('accepts the real origins as backups of parent tiers with goDirect', () => {
    const result = validateConfig({
      origins,
      tiers: { id: 'edge-fra-1', secret: SECRET },
      sites: [
        { name: 'edge', hosts: ['*'], origins: ['shield-1', 'shield-2'], backup: ['origin'], goDirect: true },
      ],
    });
    assert.ok('config' in result, JSON.stringify(result));
    assert.equal(result.config.tiers.id, 'edge-fra-1');
  });

  it('names every misuse with its path', () => {
    assert.deepEqual(
      problems({
        origins,
        tiers: { secret: SECRET },
        sites: [
          { name: 'a', hosts: ['a.example.com'], origins: ['shield-1'], backup: ['origin'] },
          { name: 'b', hosts: ['b.example.com'], origins: ['shield-1', 'origin'] },
          { name: 'c', hosts: ['c.example.com'], origins: ['shield-1'], goDirect: true },
          { name: 'd', hosts: ['d.example.com'], origins: ['origin'], goDirect: true },
        ],
      }),
      {
        'sites[0].backup': 'real origins (origin) behind parent tiers are used only with goDirect: true',
        'sites[1].origins':
          'mixes parent tiers and real origins: list the real ones in backup, with goDirect',
        'sites[2].goDirect': 'goDirect needs the real origins in backup',
        'sites[3].goDirect': 'goDirect needs origins that are parent tiers (tier: parent)',
      },
    );
    assert.deepEqual(problems({ origins, sites: [{ name: 'a', hosts: ['*'], origins: ['shield-1'] }] }), {
      'sites[0].origins': 'parent tiers need tiers.secret (the Strata-Tier header is signed with it)',
    });
    const bad = problems({ origins: [], tiers: { secret: 'short', id: 'has space', maxHops: 0 } });
    assert.deepEqual(Object.keys(bad).sort(), ['tiers.id', 'tiers.maxHops', 'tiers.secret']);
  });
});
