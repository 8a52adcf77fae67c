import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signTier, verifyTier } from '../../../src/http/tier-auth.ts';

const SECRET = 'tier-secret-0123456789abcdefghijklmnop';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const TARGET = '/assets/2026/01/catalogue/spring-collection/hero-image-large.webp?w=1920&h=1080&fit=crop&v=3';

describe('Strata-Tier header', () => {
  it('verifies a header signed with the shared secret for the same method and target', () => {
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.match(value, /^id=edge-1; ts=\d+; sig=[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(verifyTier(value, SECRET, NOW + 5000, 30_000, 'GET', TARGET), {
      id: 'edge-1',
      bound: false,
    });
  });

  it('ignores another secret, another method, another target, a changed id', () => {
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.equal(verifyTier(value, `${SECRET}x`, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'POST', TARGET), undefined);
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', `${TARGET}&x=1`), undefined);
    assert.equal(
      verifyTier(value.replace('edge-1', 'edge-2'), SECRET, NOW, 30_000, 'GET', TARGET),
      undefined,
    );
  });

  it('ignores a header outside the allowed clock skew, either way', () => {
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.equal(verifyTier(value, SECRET, NOW + 31_000, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier(value, SECRET, NOW - 31_000, 30_000, 'GET', TARGET), undefined);
  });

  it('ignores malformed values and any header when no secret is configured', () => {
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.equal(verifyTier(value, undefined, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier([value, value], SECRET, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier(`${value}; extra=1`, SECRET, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier('id=edge-1; ts=1; sig=short', SECRET, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier('x'.repeat(5000), SECRET, NOW, 30_000, 'GET', TARGET), undefined);
  });

  it('covers the purge fence when one is sent, and signs exactly as before without one', () => {
    const fence = 'a3f1c2d4-0000-4000-8000-000000000001=17, stream:purges=4096';
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET, fence);
    assert.deepEqual(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence), {
      id: 'edge-1',
      bound: false,
    });
    // Dropped, changed, or added to a request signed without one: the header does not verify.
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence.replace('17', '18')), undefined);
    const plain = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.equal(verifyTier(plain, SECRET, NOW, 30_000, 'GET', TARGET, fence), undefined);
    // A target that ends like a fence signs another text (the fence follows a newline).
    const tricky = signTier(SECRET, 'edge-1', NOW, 'GET', `${TARGET}|fence=${fence}`);
    assert.equal(verifyTier(tricky, SECRET, NOW, 30_000, 'GET', TARGET, fence), undefined);
  });

  it('binds a header to its Host and Strata-Client: not replayed for another site nor beside another address', () => {
    const fence = 'a3f1c2d4-0000-4000-8000-000000000001=17';
    const bound = { host: 'shop.example.com', client: '198.51.100.7' };
    const value = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET, fence, bound);
    assert.deepEqual(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence, bound), {
      id: 'edge-1',
      bound: true,
    });
    const verify = (binding: { host: string; client?: string }) =>
      verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence, binding);
    assert.equal(verify({ host: 'other-site.example.net', client: bound.client }), undefined);
    assert.equal(verify({ host: 'shop.example.com:8080', client: bound.client }), undefined);
    assert.equal(verify({ host: bound.host, client: '203.0.113.50' }), undefined);
    assert.equal(verify({ host: bound.host }), undefined, 'the client dropped');
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence), undefined, 'read unbound');
    // Without a client named, the Host alone; a client added on the way does not verify.
    const hostOnly = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET, undefined, { host: bound.host });
    assert.deepEqual(
      verifyTier(hostOnly, SECRET, NOW, 30_000, 'GET', TARGET, undefined, { host: bound.host }),
      {
        id: 'edge-1',
        bound: true,
      },
    );
    assert.equal(
      verifyTier(hostOnly, SECRET, NOW, 30_000, 'GET', TARGET, undefined, {
        host: bound.host,
        client: '1.2.3.4',
      }),
      undefined,
    );
    // A child of an earlier version signs without them: verified, unbound, whatever the Host.
    const earlier = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET, fence);
    assert.deepEqual(
      verifyTier(earlier, SECRET, NOW, 30_000, 'GET', TARGET, fence, {
        host: 'any.example.org',
        client: '1.2.3.4',
      }),
      { id: 'edge-1', bound: false },
    );
  });
});
