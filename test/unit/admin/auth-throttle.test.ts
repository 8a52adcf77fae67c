import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthThrottle } from '../../../src/admin/auth-throttle.ts';
import { createClock } from '../../helpers/clock.ts';

describe('AuthThrottle', () => {
  it('throttles an address at the limit until its window ends, others untouched', () => {
    const clock = createClock();
    const throttle = new AuthThrottle(3, 60_000, clock.now);
    for (let i = 0; i < 3; i++) {
      assert.equal(throttle.retryAfter('10.0.0.1'), 0);
      throttle.failed('10.0.0.1');
    }
    assert.equal(throttle.retryAfter('10.0.0.1'), 60);
    assert.equal(throttle.retryAfter('10.0.0.2'), 0);
    clock.advance(59.5);
    assert.equal(throttle.retryAfter('10.0.0.1'), 1);
    clock.advance(0.5);
    assert.equal(throttle.retryAfter('10.0.0.1'), 0);
  });

  it('counts an IPv6 client by its /64: rotating addresses buys no fresh guesses', () => {
    const clock = createClock();
    const throttle = new AuthThrottle(3, 60_000, clock.now);
    for (let i = 1; i <= 3; i++) throttle.failed(`2001:db8:1:2::${i}`);
    assert.equal(throttle.retryAfter('2001:db8:1:2:abcd::9'), 60);
    assert.equal(throttle.retryAfter('2001:db8:1:3::1'), 0, 'another /64');
  });

  it('a success before the limit clears the count', () => {
    const clock = createClock();
    const throttle = new AuthThrottle(2, 60_000, clock.now);
    throttle.failed('a');
    throttle.succeeded('a');
    throttle.failed('a');
    assert.equal(throttle.retryAfter('a'), 0);
  });

  it('stays bounded under failures from 20,000 addresses', () => {
    const clock = createClock();
    const throttle = new AuthThrottle(1, 60_000, clock.now);
    for (let i = 0; i < 20_000; i++) throttle.failed(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(throttle.retryAfter('10.0.78.31'), 60, 'the newest are kept');
    assert.equal(throttle.retryAfter('10.0.0.0'), 0, 'the oldest were dropped');
  });
});
