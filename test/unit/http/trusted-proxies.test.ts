import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTrustList } from '../../../src/http/trusted-proxies.ts';

describe('createTrustList', () => {
  it('trusts nobody when empty', () => {
    const trusted = createTrustList([]);
    assert.equal(trusted('127.0.0.1'), false);
    assert.equal(trusted('::1'), false);
  });

  it('matches single addresses and CIDR ranges, IPv4 and IPv6', () => {
    const trusted = createTrustList(['192.0.2.10', '10.0.0.0/8', '2001:db8::/32', '::1']);
    assert.equal(trusted('192.0.2.10'), true);
    assert.equal(trusted('192.0.2.11'), false);
    assert.equal(trusted('10.255.1.2'), true);
    assert.equal(trusted('11.0.0.1'), false);
    assert.equal(trusted('2001:db8:1::5'), true);
    assert.equal(trusted('2001:db9::5'), false);
    assert.equal(trusted('::1'), true);
  });

  it('matches ::ffff:-mapped IPv4 peers (as a dual-stack socket reports them) against IPv4 entries', () => {
    const trusted = createTrustList(['10.0.0.0/8', '192.0.2.10']);
    assert.equal(trusted('::ffff:10.1.2.3'), true);
    assert.equal(trusted('::ffff:192.0.2.10'), true);
    assert.equal(trusted('::ffff:192.0.2.11'), false);
  });
});
