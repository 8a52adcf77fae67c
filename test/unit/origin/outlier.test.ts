import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordFailure, recordSuccess, retryAfterMs } from '../../../src/origin/outlier.ts';
import { RetryBudget } from '../../../src/origin/retry-budget.ts';
import { OriginState } from '../../../src/origin/state.ts';

const config = { consecutiveFailures: 3, baseEjection: 1000, maxEjection: 5000, maxEjectedPercent: 50 };

function members(n: number): OriginState[] {
  return Array.from(
    { length: n },
    (_, i) => new OriginState({ name: `o${i}`, weight: 1, maxConnections: 10 }),
  );
}

describe('passive ejection', () => {
  it('ejects after consecutiveFailures in a row, doubling each time up to maxEjection', () => {
    const [a, ...rest] = members(4);
    const all = [a!, ...rest];
    let now = 0;
    const ejectionLengths: number[] = [];
    for (let round = 0; round < 5; round++) {
      assert.equal(recordFailure(a!, config, all, now), false);
      assert.equal(recordFailure(a!, config, all, now), false);
      assert.equal(recordFailure(a!, config, all, now), true);
      ejectionLengths.push(a!.ejectedUntil - now);
      now = a!.ejectedUntil;
    }
    assert.deepEqual(ejectionLengths, [1000, 2000, 4000, 5000, 5000]);
    assert.equal(a!.ejections, 5);
  });

  it('starts counting again after a success', () => {
    const all = members(2);
    recordFailure(all[0]!, config, all, 0);
    recordFailure(all[0]!, config, all, 0);
    recordSuccess(all[0]!, 12, 0);
    assert.equal(recordFailure(all[0]!, config, all, 0), false);
    assert.equal(all[0]!.ejected(0), false);
  });

  it('ejects no more than maxEjectedPercent of a site, but always one', () => {
    const all = members(2);
    const fail = (o: OriginState) => [1, 2, 3].map(() => recordFailure(o, config, all, 0)).at(-1);
    assert.equal(fail(all[0]!), true);
    assert.equal(fail(all[1]!), false, 'the second of two would be 100%');
    const alone = members(1);
    assert.equal(
      recordFailure(alone[0]!, { ...config, consecutiveFailures: 1, maxEjectedPercent: 0 }, alone, 0),
      true,
    );
  });

  it('honours a 503 Retry-After as a minimum ejection, at once, capped at maxEjection', () => {
    const all = members(3);
    assert.equal(recordFailure(all[0]!, config, all, 0, 3000), true);
    assert.equal(all[0]!.ejectedUntil, 3000);
    assert.equal(recordFailure(all[1]!, config, all, 0, 60_000), false, 'one of three is the 50% limit');
    const other = members(3);
    recordFailure(other[0]!, config, other, 0, 60_000);
    assert.equal(other[0]!.ejectedUntil, 5000);
  });

  it('takes Retry-After: 0 (or a past date) as an ordinary failure, not an ejection at once', () => {
    const all = members(3);
    assert.equal(recordFailure(all[0]!, config, all, 0, 0), false);
    assert.equal(all[0]!.ejected(0), false);
    assert.equal(recordFailure(all[0]!, config, all, 0, 0), false);
    assert.equal(recordFailure(all[0]!, config, all, 0, 0), true, 'the third failure in a row ejects');
    assert.equal(all[0]!.ejectedUntil, 1000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    assert.equal(retryAfterMs('7', 0), 7000);
    assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000);
    assert.equal(retryAfterMs('soon', 0), undefined);
    assert.equal(retryAfterMs(undefined, 0), undefined);
  });
});

describe('retry budget', () => {
  it('allows 20% of requests plus 10 a second over a 10 second window, and counts refusals', () => {
    let now = 0;
    const budget = new RetryBudget({ budgetPercent: 20, minPerSecond: 10 }, () => now);
    for (let i = 0; i < 1000; i++) budget.request();
    let allowed = 0;
    for (let i = 0; i < 1000; i++) if (budget.tryRetry()) allowed++;
    assert.equal(allowed, 200 + 100);
    assert.equal(budget.exhausted, 700);
    now += 10_000;
    assert.equal(budget.tryRetry(), true, 'a new window starts empty');
  });

  it('with no traffic still allows minPerSecond × 10 retries per window, none with both at zero', () => {
    const idle = new RetryBudget({ budgetPercent: 20, minPerSecond: 1 }, () => 0);
    const results = Array.from({ length: 12 }, () => idle.tryRetry());
    assert.equal(results.filter(Boolean).length, 10);
    const none = new RetryBudget({ budgetPercent: 0, minPerSecond: 0 }, () => 0);
    none.request();
    assert.equal(none.tryRetry(), false);
  });
});
