import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import { addressBits, clientOf, forwardedNodes, GeoResolver } from '../../../src/origin/geo.ts';
import { writeMmdb } from '../../helpers/mmdb.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-geo-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const database = join(dir, 'country.mmdb');
writeMmdb(database, [
  { cidr: '127.0.0.2/32', country: 'US', continent: 'NA' },
  { cidr: '127.0.0.3/32', country: 'DE', continent: 'EU' },
  { cidr: '198.51.100.0/24', country: 'JP', continent: 'AS' },
]);

describe('geo database', () => {
  it('maps an address to its country, then its continent, lowercased', () => {
    const geo = new GeoResolver({ database, networks: [] });
    assert.deepEqual(geo.regionsOf('127.0.0.2'), ['us', 'na']);
    assert.deepEqual(geo.regionsOf('::ffff:127.0.0.3'), ['de', 'eu']);
    assert.deepEqual(geo.regionsOf('198.51.100.77'), ['jp', 'as']);
    assert.deepEqual(geo.regionsOf('127.0.0.9'), []);
    assert.deepEqual(geo.regionsOf('2001:db8::1'), [], 'an IPv6 client of an IPv4 database: unknown');
  });

  it('lets a configured network win over the database', () => {
    const geo = new GeoResolver({ database, networks: [{ cidr: '127.0.0.0/30', region: 'eu' }] });
    assert.deepEqual(geo.regionsOf('127.0.0.2'), ['eu']);
    assert.deepEqual(geo.regionsOf('127.0.0.3'), ['eu']);
  });

  it('passes check-config with a real MMDB file', () => {
    const result = validateConfig({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1', region: 'us' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'], prefer: 'client-region' }],
      geo: { database },
    });
    assert.ok('config' in result, JSON.stringify(result));
  });
});

describe('geo networks', () => {
  const geo = new GeoResolver({
    networks: [
      { cidr: '127.0.0.0/8', region: 'eu' },
      { cidr: '127.0.0.2/32', region: 'us' },
      { cidr: 'fd00::/8', region: 'asia' },
    ],
  });

  it('maps an address to the region of the most specific range', () => {
    assert.deepEqual(geo.regionsOf('127.0.0.2'), ['us']);
    assert.deepEqual(geo.regionsOf('127.0.0.3'), ['eu']);
    assert.deepEqual(geo.regionsOf('::ffff:127.0.0.2'), ['us'], 'a dual-stack socket address');
    assert.deepEqual(geo.regionsOf('fd12:3456::1'), ['asia']);
    assert.deepEqual(geo.regionsOf('10.0.0.1'), []);
    assert.deepEqual(geo.regionsOf('not-an-address'), []);
  });

  it('reads IPv6 forms: compressed, full, embedded IPv4', () => {
    assert.equal(addressBits('::1'), 1n);
    assert.equal(addressBits('0:0:0:0:0:0:0:1'), 1n);
    assert.equal(addressBits('64:ff9b::1.2.3.4'), addressBits('64:ff9b::102:304'));
    assert.equal(addressBits('1:2:3'), undefined);
  });
});

describe('the client behind trusted proxies', () => {
  const trusted = (address: string) => address.startsWith('10.') || address === '2001:db8::10';
  it('is the first untrusted hop read from the right of X-Forwarded-For', () => {
    assert.equal(clientOf('203.0.113.9', undefined, trusted), '203.0.113.9');
    assert.equal(clientOf('198.51.100.1, 203.0.113.9, 10.0.0.2', undefined, trusted), '203.0.113.9');
    assert.equal(clientOf('10.0.0.5, 10.0.0.2', undefined, trusted), '10.0.0.5', 'all trusted: the leftmost');
    assert.equal(
      clientOf('203.0.113.9:4711, 10.0.0.2:80', undefined, trusted),
      '203.0.113.9',
      'hops with ports',
    );
    assert.equal(clientOf('[2001:db8::9]:443, [2001:db8::10]', undefined, trusted), '2001:db8::9');
  });

  it('reads Forwarded when a trusted proxy sent only that (X-Forwarded-For holds only the peer)', () => {
    const forwarded =
      'for=203.0.113.9:4711;proto=https, for="[2001:db8::10]";host="a.example", for=10.0.0.2;host="a.example";proto=http';
    assert.deepEqual(forwardedNodes(forwarded), ['203.0.113.9', '2001:db8::10', '10.0.0.2']);
    assert.equal(clientOf('10.0.0.2', forwarded, trusted), '203.0.113.9');
    assert.equal(clientOf(undefined, undefined, trusted), undefined);
  });

  it('reads the X-Forwarded-For a trusted proxy extended, never a longer Forwarded the client wrote', () => {
    const forged = 'for=192.0.2.1, for=192.0.2.2, for=192.0.2.3, for=10.0.0.2';
    assert.equal(clientOf('203.0.113.9, 10.0.0.2', forged, trusted), '203.0.113.9');
  });
});
