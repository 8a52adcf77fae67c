import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressBits, clientOf, GeoResolver } from '../../../src/origin/geo.ts';

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
  const trusted = (address: string) => address.startsWith('10.');
  it('is the first untrusted hop read from the right of X-Forwarded-For', () => {
    assert.equal(clientOf('203.0.113.9', trusted), '203.0.113.9');
    assert.equal(clientOf('198.51.100.1, 203.0.113.9, 10.0.0.2', trusted), '203.0.113.9');
    assert.equal(clientOf('10.0.0.5, 10.0.0.2', trusted), '10.0.0.5', 'all trusted: the leftmost');
  });
});
