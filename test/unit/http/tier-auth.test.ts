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
    assert.deepEqual(verifyTier(value, SECRET, NOW + 5000, 30_000, 'GET', TARGET), { id: 'edge-1' });
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
    assert.deepEqual(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence), { id: 'edge-1' });
    // Dropped, changed, or added to a request signed without one: the header does not verify.
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET), undefined);
    assert.equal(verifyTier(value, SECRET, NOW, 30_000, 'GET', TARGET, fence.replace('17', '18')), undefined);
    const plain = signTier(SECRET, 'edge-1', NOW, 'GET', TARGET);
    assert.equal(verifyTier(plain, SECRET, NOW, 30_000, 'GET', TARGET, fence), undefined);
    // A target that ends like a fence signs another text (the fence follows a newline).
    const tricky = signTier(SECRET, 'edge-1', NOW, 'GET', `${TARGET}|fence=${fence}`);
    assert.equal(verifyTier(tricky, SECRET, NOW, 30_000, 'GET', TARGET, fence), undefined);
  });
});
