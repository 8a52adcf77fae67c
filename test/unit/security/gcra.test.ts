import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, Gcra } from '../../../src/security/gcra.ts';

describe('Gcra', () => {
  it('admits a burst at once, then one request per interval', () => {
    const gcra = new Gcra(10, 5);
    const t = 1_000_000;
    for (let i = 0; i < 5; i++) assert.equal(gcra.take('a', t), 0, `request ${i + 1}`);
    const wait = gcra.take('a', t);
    assert.ok(Math.abs(wait - 100) < 1e-9, `waits one interval (${wait})`);
    assert.ok(gcra.take('a', t + 99) > 0, 'a refusal takes nothing: still refused before the interval');
    assert.equal(gcra.take('a', t + 100), 0);
    assert.ok(gcra.take('a', t + 100) > 0);
    assert.equal(gcra.take('b', t), 0, 'keys are independent');
  });

  it('holds a client sending 10x the rate to the rate over a long run', () => {
    const gcra = new Gcra(100, 10);
    let admitted = 0;
    for (let ms = 0; ms < 10_000; ms++) if (gcra.take('k', ms) === 0) admitted++;
    assert.ok(admitted >= 1000 && admitted <= 1010, `admitted ${admitted} in 10 s at 100/s`);
  });

  it('reports what remains of the burst', () => {
    const gcra = new Gcra(1, 3);
    assert.equal(gcra.remaining('k', 0), 3);
    gcra.take('k', 0);
    assert.equal(gcra.remaining('k', 0), 2);
    assert.equal(gcra.remaining('k', 1000), 3);
  });

  it('counts requests admitted elsewhere (another worker) against the key', () => {
    const gcra = new Gcra(10, 5);
    gcra.add('k', 5, 0);
    assert.ok(gcra.take('k', 0) > 0);
  });

  it('keeps at most maxKeys keys, dropping recovered ones first', () => {
    const gcra = new Gcra(1, 1, 100);
    for (let i = 0; i < 1000; i++) gcra.take(`k${i}`, i * 10);
    assert.ok(gcra.size <= 100, `size ${gcra.size}`);
    assert.ok(gcra.take('k999', 9990) > 0, 'the newest key is still limited');
  });
});

describe('clientKey', () => {
  it('keys IPv4 by address and IPv6 by its /64', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });
});
