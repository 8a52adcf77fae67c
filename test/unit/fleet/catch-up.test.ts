import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CatchUp } from '../../../src/fleet/catch-up.ts';

describe('readiness after a start with the purge bus', () => {
  it('is not ready until the stream sequence held at start is handled', () => {
    let now = 0;
    const catchUp = new CatchUp(30_000, () => now);
    assert.deepEqual(catchUp.state(), { ready: false, reason: 'waiting for the purge bus' });
    catchUp.setTarget(1200);
    catchUp.handled(400);
    assert.deepEqual(catchUp.state(), {
      ready: false,
      reason: 'catching up with the purge bus (400 of 1200)',
    });
    now = 250;
    catchUp.handled(1200);
    assert.deepEqual(catchUp.state(), { ready: true });
    assert.equal(catchUp.tookMs, 250);
    // A later target (a consumer set up again) does not take readiness back.
    catchUp.setTarget(5000);
    assert.deepEqual(catchUp.state(), { ready: true });
  });

  it('is ready at once when nothing is pending', () => {
    const catchUp = new CatchUp(30_000, () => 0);
    catchUp.setTarget(0);
    assert.deepEqual(catchUp.state(), { ready: true });
  });

  it('reports ready with the reason past the timeout (bus unreachable, replay too long)', () => {
    let now = 0;
    const unreachable = new CatchUp(1000, () => now);
    now = 1000;
    assert.deepEqual(unreachable.state(), {
      ready: true,
      reason: 'purge bus unreachable since start: purges published meanwhile are not applied yet',
    });
    now = 0;
    const slow = new CatchUp(1000, () => now);
    slow.setTarget(10);
    slow.handled(3);
    now = 1500;
    assert.deepEqual(slow.state(), { ready: true, reason: 'purge bus replay still running (3 of 10)' });
  });
});
