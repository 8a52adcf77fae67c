/** Host → site resolution: exact name, then the longest *.suffix wildcard (as nginx), then *. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { siteSchema } from '../../../src/config/schema.ts';
import { SiteTable } from '../../../src/edge/sites.ts';
import type { OriginPool } from '../../../src/origin/pool.ts';

function table(sites: Array<{ name: string; hosts: string[] }>): SiteTable {
  const configs = sites.map((site) => ({
    ...siteSchema.parse({ ...site, origins: ['o'] }),
    selection: 'latency' as const, // resolved by the whole config's schema (siteSelection)
  }));
  return new SiteTable(configs, () => ({}) as OriginPool);
}

describe('SiteTable', () => {
  it('takes the longest wildcard whatever the order of the sites', () => {
    const sites = table([
      { name: 'wide', hosts: ['*.example.com'] },
      { name: 'images', hosts: ['*.img.example.com'] },
      { name: 'exact', hosts: ['cdn.img.example.com'] },
      { name: 'rest', hosts: ['*'] },
    ]);
    assert.equal(sites.resolve('a.img.example.com')?.name, 'images');
    assert.equal(sites.resolve('A.IMG.example.com:8080')?.name, 'images');
    assert.equal(sites.resolve('cdn.img.example.com')?.name, 'exact');
    assert.equal(sites.resolve('www.example.com')?.name, 'wide');
    assert.equal(sites.resolve('img.example.com')?.name, 'wide');
    assert.equal(sites.resolve('example.com')?.name, 'rest');
    assert.equal(sites.resolve('example.org')?.name, 'rest');
    const reversed = table([
      { name: 'images', hosts: ['*.img.example.com'] },
      { name: 'wide', hosts: ['*.example.com'] },
    ]);
    assert.equal(reversed.resolve('a.img.example.com')?.name, 'images');
    assert.equal(reversed.resolve('b.example.com')?.name, 'wide');
    assert.equal(reversed.resolve('example.org'), undefined);
  });

  it('keeps the first site for a wildcard named twice', () => {
    const sites = table([
      { name: 'first', hosts: ['*.example.com'] },
      { name: 'second', hosts: ['*.example.com'] },
    ]);
    assert.equal(sites.resolve('a.example.com')?.name, 'first');
  });
});
