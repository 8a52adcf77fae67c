import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  CollapseTable,
  HERD_FOLLOWERS,
  type LeaderOutcome,
  leaveOnAbort,
} from '../../../src/cache/collapse.ts';
import type { Fill } from '../../../src/cache/fill.ts';
import { createClock } from '../../helpers/clock.ts';
import { freshness } from '../../helpers/records.ts';

const HIT_FOR_PASS_MS = 120_000;
const never = new AbortController().signal;

function table() {
  const clock = createClock();
  return { clock, collapse: new CollapseTable(HIT_FOR_PASS_MS, clock.now) };
}

/** A table whose herds are collected into `herds` (each one's stillWaiting). */
function herdTable() {
  const { collapse } = table();
  const herds: Array<() => boolean> = [];
  collapse.onHerd = (stillWaiting) => herds.push(stillWaiting);
  return { collapse, herds };
}

function shared(): LeaderOutcome {
  const record = freshness();
  return {
    kind: 'shared',
    fill: {} as Fill,
    status: 200,
    headers: [],
    vary: [],
    secondaryKey: '',
    record,
    done: Promise.resolve(),
  };
}

describe('CollapseTable', () => {
  it('counts failed leaderships of a key in a row, and forgets them on success or after 10 s', async () => {
    const { clock, collapse } = table();
    const elections: Array<number | undefined> = [];
    for (let i = 0; i < 3; i++) {
      const settle = collapse.lead('k');
      const pending = collapse.pending('k')!;
      settle({ kind: 'failed' });
      const outcome = await collapse.follow(pending, 1000, leaveOnAbort(never));
      elections.push(outcome.kind === 'failed' ? outcome.elections : undefined);
    }
    assert.deepEqual(elections, [1, 2, 3]);
    collapse.lead('k')({ kind: 'look-again' });
    const again = collapse.lead('k');
    const pending = collapse.pending('k')!;
    again({ kind: 'failed' });
    assert.deepEqual(await collapse.follow(pending, 1000, leaveOnAbort(never)), {
      kind: 'failed',
      elections: 1,
    });
    clock.advance(11);
    const later = collapse.lead('k');
    const next = collapse.pending('k')!;
    later({ kind: 'failed' });
    assert.deepEqual(await collapse.follow(next, 1000, leaveOnAbort(never)), {
      kind: 'failed',
      elections: 1,
    });
  });

  it('unlists the pending keys a purge covers; a tag purge covers a fill whose tags are unknown', () => {
    const { collapse } = table();
    collapse.lead('http://a.test/one')({ ...shared(), tags: ['red'] } as LeaderOutcome);
    collapse.lead('http://a.test/two')({ ...shared(), tags: ['blue'] } as LeaderOutcome);
    collapse.lead('http://a.test/three');
    collapse.lead('http://b.test/four');
    assert.equal(
      collapse.purgeFills({ all: false, keys: ['http://b.test/four'], prefixes: [], tags: [] }),
      1,
    );
    assert.equal(collapse.purgeFills({ all: false, keys: [], prefixes: [], tags: ['red'] }), 2);
    assert.equal(collapse.pending('http://a.test/one'), undefined);
    assert.ok(collapse.pending('http://a.test/two'));
    assert.equal(collapse.pending('http://a.test/three'), undefined);
    assert.equal(collapse.purgeFills({ all: false, keys: [], prefixes: ['http://b.test/'], tags: [] }), 0);
    assert.equal(collapse.purgeFills({ all: false, keys: [], prefixes: ['http://a.test/'], tags: [] }), 1);
    assert.equal(collapse.size, 0);
  });

  it('the first request leads; later ones find its pending fetch', () => {
    const { collapse } = table();
    assert.equal(collapse.pending('k'), undefined);
    collapse.lead('k');
    assert.ok(collapse.pending('k'));
    assert.equal(collapse.pending('other'), undefined);
    assert.equal(collapse.size, 1);
  });

  it('followers receive the outcome of the leader', async () => {
    const { collapse } = table();
    const settle = collapse.lead('k');
    const pending = collapse.pending('k')!;
    const followers = Array.from({ length: 100 }, () =>
      collapse.follow(pending, 10_000, leaveOnAbort(never)),
    );
    assert.equal(collapse.waiters, 100);
    const outcome = shared();
    settle(outcome);
    for (const result of await Promise.all(followers)) assert.equal(result, outcome);
    assert.equal(collapse.waiters, 0);
  });

  it('a shared outcome keeps the key pending for late arrivals until release', async () => {
    const { collapse } = table();
    const settle = collapse.lead('k');
    const pending = collapse.pending('k')!;
    settle(shared());
    assert.equal(collapse.pending('k'), pending);
    assert.equal((await collapse.follow(pending, 1000, leaveOnAbort(never))).kind, 'shared');
    collapse.release('k', pending.outcome);
    assert.equal(collapse.pending('k'), undefined);
    assert.equal(collapse.size, 0);
  });

  it('release for an older fill leaves a newer leader in place', () => {
    const { collapse } = table();
    collapse.lead('k')(shared());
    const old = collapse.pending('k')!.outcome;
    collapse.release('k', old);
    collapse.lead('k');
    const current = collapse.pending('k');
    collapse.release('k', old);
    assert.equal(collapse.pending('k'), current);
  });

  it('an uncacheable outcome ends pending and marks the key hit-for-pass for a while', async () => {
    const { clock, collapse } = table();
    const settle = collapse.lead('k');
    const follower = collapse.follow(collapse.pending('k')!, 1000, leaveOnAbort(never));
    settle({ kind: 'uncacheable' });
    assert.deepEqual(await follower, { kind: 'uncacheable' });
    assert.equal(collapse.pending('k'), undefined);
    assert.equal(collapse.isHitForPass('k'), true);
    clock.advance(HIT_FOR_PASS_MS / 1000 - 1);
    assert.equal(collapse.isHitForPass('k'), true);
    clock.advance(1);
    assert.equal(collapse.isHitForPass('k'), false);
  });

  it('a later cacheable outcome clears hit-for-pass', () => {
    const { collapse } = table();
    collapse.lead('k')({ kind: 'uncacheable' });
    assert.equal(collapse.isHitForPass('k'), true);
    collapse.lead('k')(shared());
    assert.equal(collapse.isHitForPass('k'), false);
  });

  it('a failed leader ends pending so that a follower can lead again', async () => {
    const { collapse } = table();
    const settle = collapse.lead('k');
    const follower = collapse.follow(collapse.pending('k')!, 1000, leaveOnAbort(never));
    settle({ kind: 'failed' });
    assert.deepEqual(await follower, { kind: 'failed', elections: 1 });
    assert.equal(collapse.pending('k'), undefined);
    assert.equal(collapse.isHitForPass('k'), false);
  });

  it('only the first outcome of a leader counts', async () => {
    const { collapse } = table();
    const settle = collapse.lead('k');
    const follower = collapse.follow(collapse.pending('k')!, 1000, leaveOnAbort(never));
    settle({ kind: 'failed' });
    settle({ kind: 'uncacheable' });
    assert.deepEqual(await follower, { kind: 'failed', elections: 1 });
    assert.equal(collapse.isHitForPass('k'), false);
  });

  it('a follower gives up with timeout when the leader is too slow, and stops counting as a waiter', async () => {
    const { collapse } = table();
    collapse.lead('k');
    const result = await collapse.follow(collapse.pending('k')!, 5, leaveOnAbort(never));
    assert.deepEqual(result, { kind: 'timeout' });
    assert.equal(collapse.waiters, 0);
    assert.ok(collapse.pending('k'));
  });

  it('a follower whose client goes away stops waiting at once', async () => {
    const { collapse } = table();
    collapse.lead('k');
    const controller = new AbortController();
    const follower = collapse.follow(collapse.pending('k')!, 60_000, leaveOnAbort(controller.signal));
    assert.equal(collapse.waiters, 1);
    controller.abort();
    assert.deepEqual(await follower, { kind: 'timeout' });
    assert.equal(collapse.waiters, 0);
  });

  it('a follower stops listening for its client leaving once its leader settles', async () => {
    const { collapse } = table();
    const settle = collapse.lead('k');
    let listening = 0;
    const onLeave = () => {
      listening++;
      return () => {
        listening--;
      };
    };
    const followers = [1, 2, 3].map(() => collapse.follow(collapse.pending('k')!, 60_000, onLeave));
    assert.equal(listening, 3);
    settle({ kind: 'look-again' });
    for (const follower of followers) assert.deepEqual(await follower, { kind: 'look-again' });
    assert.equal(listening, 0);
  });

  it('tells onHerd once per leadership when HERD_FOLLOWERS followers wait, with whether they still wait', async () => {
    const { collapse, herds } = herdTable();
    const settle = collapse.lead('k');
    const pending = collapse.pending('k')!;
    const controllers = Array.from({ length: HERD_FOLLOWERS + 10 }, () => new AbortController());
    const follow = (controller: AbortController) =>
      collapse.follow(pending, 60_000, leaveOnAbort(controller.signal));
    const followers = controllers.slice(0, HERD_FOLLOWERS - 1).map(follow);
    assert.equal(herds.length, 0, 'not one follower short of a herd');
    followers.push(follow(controllers[HERD_FOLLOWERS - 1]!));
    assert.equal(herds.length, 1);
    assert.equal(herds[0]!(), true);
    // Followers leaving and others arriving: still the same herd, told once.
    for (const controller of controllers.slice(0, 5)) controller.abort();
    followers.push(...controllers.slice(HERD_FOLLOWERS).map(follow));
    assert.equal(collapse.waiters, HERD_FOLLOWERS + 5);
    assert.equal(herds.length, 1);
    settle(shared());
    assert.equal(herds[0]!(), false, 'the leader answered: they no longer wait');
    await Promise.all(followers);
    collapse.release('k', pending.outcome);
    // A new leadership of the same key with a herd of its own is told again.
    const again = collapse.lead('k');
    const next = collapse.pending('k')!;
    const more = Array.from({ length: HERD_FOLLOWERS }, () =>
      collapse.follow(next, 60_000, leaveOnAbort(never)),
    );
    assert.equal(herds.length, 2);
    assert.equal(herds[1]!(), true);
    again({ kind: 'look-again' });
    await Promise.all(more);
  });

  it("a herd whose followers all left no longer waits, though its leader's outcome is still to come", async () => {
    const { collapse, herds } = herdTable();
    collapse.lead('k');
    const pending = collapse.pending('k')!;
    const controllers = Array.from({ length: HERD_FOLLOWERS }, () => new AbortController());
    const followers = controllers.map((c) => collapse.follow(pending, 60_000, leaveOnAbort(c.signal)));
    assert.equal(herds[0]!(), true);
    for (const controller of controllers.slice(1)) controller.abort();
    assert.equal(herds[0]!(), true, 'one still waits');
    controllers[0]!.abort();
    assert.equal(herds[0]!(), false);
    await Promise.all(followers);
  });

  it("a herd whose leader has its origin's answer no longer waits, its outcome still to come", async () => {
    const { collapse, herds } = herdTable();
    const settle = collapse.lead('k');
    const pending = collapse.pending('k')!;
    const followers = Array.from({ length: HERD_FOLLOWERS }, () =>
      collapse.follow(pending, 60_000, leaveOnAbort(never)),
    );
    collapse.answered('k', Promise.resolve(shared()));
    assert.equal(herds[0]!(), true, 'another leadership answered: not this one');
    collapse.answered('k', pending.outcome);
    assert.equal(herds[0]!(), false);
    settle({ kind: 'look-again' });
    await Promise.all(followers);
  });

  it('the waiter count returns to 0 after 10,000 aborted followers', async () => {
    const { collapse } = table();
    collapse.lead('k');
    const pending = collapse.pending('k')!;
    const controllers = Array.from({ length: 10_000 }, () => new AbortController());
    const followers = controllers.map((controller) =>
      collapse.follow(pending, 60_000, leaveOnAbort(controller.signal)),
    );
    assert.equal(collapse.waiters, 10_000);
    for (const controller of controllers) controller.abort();
    await Promise.all(followers);
    assert.equal(collapse.waiters, 0);
  });

  it('10,000 aborted followers leave no memory behind on a pending fetch', {}, async () => {
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    const { collapse } = table();
    collapse.lead('k');
    const pending = collapse.pending('k')!;
    const wave = async (count: number) => {
      const controllers = Array.from({ length: count }, () => new AbortController());
      const followers = controllers.map((controller) =>
        collapse.follow(pending, 60_000, leaveOnAbort(controller.signal)),
      );
      for (const controller of controllers) controller.abort();
      await Promise.all(followers);
    };
    await wave(1000);
    gc();
    const before = process.memoryUsage().heapUsed;
    await wave(10_000);
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    assert.ok(growth < 1_000_000, `heap grew by ${growth} bytes over 10,000 aborted followers`);
  });

  it('a follower whose client left before it followed returns at once', {}, async () => {
    const { collapse } = table();
    collapse.lead('k');
    const controller = new AbortController();
    controller.abort();
    const started = performance.now();
    const result = await collapse.follow(collapse.pending('k')!, 200, leaveOnAbort(controller.signal));
    assert.deepEqual(result, { kind: 'timeout' });
    assert.ok(performance.now() - started < 100, 'waited for the timeout');
  });

  it('keeps its hit-for-pass markers bounded: expired ones are swept once there are many', () => {
    const { clock, collapse } = table();
    for (let i = 0; i < 10_000; i++) collapse.lead(`/uncacheable/${i}`)({ kind: 'uncacheable' });
    assert.equal(collapse.hitForPassMarkers, 10_000);
    clock.advance(HIT_FOR_PASS_MS / 1000 + 1);
    collapse.lead('/uncacheable/late')({ kind: 'uncacheable' });
    assert.equal(collapse.hitForPassMarkers, 1);
    assert.equal(collapse.isHitForPass('/uncacheable/late'), true);
    assert.equal(collapse.isHitForPass('/uncacheable/1'), false);
  });
});
