import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAILURE_PENALTY_MS } from '../../../src/origin/latency.ts';
import { eject } from '../../../src/origin/outlier.ts';
import { OriginSelector, rendezvousScore, type SelectionMode } from '../../../src/origin/selection.ts';
import { OriginState } from '../../../src/origin/state.ts';

/** A deterministic random source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const START = 1000;

function origins(spec: Array<{ name: string; ms?: number; region?: string; weight?: number; max?: number }>) {
  return spec.map((o) => {
    const state = new OriginState({
      name: o.name,
      region: o.region,
      weight: o.weight ?? 1,
      maxConnections: o.max ?? 100,
    });
    if (o.ms !== undefined) state.latency.observe(o.ms, START);
    return state;
  });
}

function setup(
  spec: Parameters<typeof origins>[0],
  selection: SelectionMode = 'latency',
  options: { slowStart?: number; backups?: Parameters<typeof origins>[0] } = {},
) {
  let now = START;
  const members = origins(spec);
  const backups = origins(options.backups ?? []);
  const selector = new OriginSelector(
    members,
    backups,
    { selection, slowStart: options.slowStart ?? 0 },
    () => now,
    seeded(7),
  );
  const share = (n: number, request = {}) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const name = selector.iter(request).next()!.name;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    return counts;
  };
  return {
    members,
    backups,
    selector,
    share,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

describe('latency selection', () => {
  it('sends every request to the 10 ms origin of three at 10, 50 and 200 ms', () => {
    const { share } = setup([
      { name: 'slow', ms: 200 },
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    assert.deepEqual(share(1000), { near: 1000 });
  });

  it('spills to the next cheapest once the best origin has maxConnections requests in flight', () => {
    const { members, share, now } = setup([
      { name: 'near', ms: 10, max: 2 },
      { name: 'mid', ms: 50 },
      { name: 'far', ms: 200 },
    ]);
    members[0]!.start(now());
    assert.deepEqual(share(10), { near: 10 }, 'one in flight of two: still fit');
    members[0]!.start(now());
    assert.deepEqual(share(10), { mid: 10 });
  });

  it('weighs cost by requests in flight and divides it by weight', () => {
    const { members, share, now } = setup([
      { name: 'a', ms: 10, max: 100 },
      { name: 'b', ms: 12, max: 100, weight: 2 },
    ]);
    assert.deepEqual(share(5), { b: 5 }, '12 / 2 beats 10 / 1');
    for (let i = 0; i < 90; i++) members[1]!.start(now());
    assert.deepEqual(share(5), { a: 5 }, '12 × 1.9 / 2 loses to 10');
  });

  it('makes a fast failure look slow: a 1 ms refusal costs at least the failure penalty', () => {
    const { members, share, now } = setup([
      { name: 'refusing', ms: 1 },
      { name: 'mid', ms: 50 },
    ]);
    members[0]!.latency.penalize(now());
    assert.equal(members[0]!.latency.value, 1 + 0.25 * (FAILURE_PENALTY_MS - 1));
    assert.deepEqual(share(10), { mid: 10 });
  });

  it('re-measures an origin whose estimate went stale with one request at a time, not a burst', () => {
    const { members, selector, now, advance } = setup([
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    const [near, mid] = members;
    near!.latency.observe(300, now()); // it slowed down: traffic went to mid, which stays measured
    for (let i = 0; i < 30; i++) {
      advance(1000);
      mid!.latency.observe(50, now());
    }
    // 30 s later near's decayed estimate reads below mid's: it is tried again — once.
    const pick = () => selector.iter().next()!;
    assert.equal(pick().name, 'near');
    const token = near!.start(now());
    const next = Array.from({ length: 20 }, () => pick().name);
    assert.deepEqual(new Set(next), new Set(['mid']), 'the rest wait for its answer elsewhere');
    // Its answer says it is still slow: traffic stays on mid.
    advance(300);
    near!.finish(token);
    near!.latency.observe(300, now());
    assert.equal(pick().name, 'mid');
  });

  it("keeps hash selection on the key's origin however stale its estimate", () => {
    const { members, selector, advance, now } = setup(
      [
        { name: 'a', ms: 10 },
        { name: 'b', ms: 10 },
      ],
      'hash',
    );
    advance(60_000);
    const key = 'https://shop.example/catalogue/item-42';
    const owner = selector.iter({ key }).next()!;
    owner.start(now());
    assert.equal(selector.iter({ key }).next()!.name, owner.name);
    assert.equal(members.length, 2);
  });

  it('moves away from an origin that slows from 10 to 300 ms on its first slow answer', () => {
    const { members, share, now, advance } = setup([
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    advance(100);
    members[0]!.latency.observe(300, now());
    assert.deepEqual(share(10), { mid: 10 });
    // Recovered: fast samples decay the estimate back below the other origin within seconds.
    for (let i = 0; i < 20; i++) {
      advance(250);
      members[0]!.latency.observe(10, now());
      members[1]!.latency.observe(50, now());
    }
    assert.deepEqual(share(10), { near: 10 });
  });

  it('moves away from a black-holed origin as its oldest request in flight waits longer than another answers', () => {
    const { members, share, now, advance } = setup([
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    members[0]!.start(now());
    advance(40);
    assert.deepEqual(share(5), { near: 5 });
    advance(30);
    assert.deepEqual(share(5), { mid: 5 });
  });

  it('tries an origin not yet measured before measured ones, then by its measure', () => {
    const { members, share } = setup([{ name: 'known', ms: 20 }, { name: 'new' }]);
    assert.deepEqual(share(3), { new: 3 });
    members[1]!.latency.observe(40, START);
    assert.deepEqual(share(3), { known: 3 });
  });
});

describe('preference tiers', () => {
  const spec = [
    { name: 'eu', ms: 30, region: 'eu' },
    { name: 'us-slow', ms: 80, region: 'us' },
    { name: 'us-fast', ms: 60, region: 'us' },
  ];

  it('stays in the preferred region even when another region answers faster', () => {
    const { share } = setup(spec);
    assert.deepEqual(share(20, { region: 'us' }), { 'us-fast': 20 });
    assert.deepEqual(share(20, { region: 'eu' }), { eu: 20 });
    assert.deepEqual(share(20), { eu: 20 }, 'no preference: cheapest overall');
  });

  it('leaves the preferred region when it is ejected, for the next by measured latency', () => {
    const { members, share, selector, now } = setup(spec);
    eject(members[2]!, now() + 10_000);
    eject(members[1]!, now() + 10_000);
    assert.deepEqual(share(10, { region: 'us' }), { eu: 10 });
    const iter = selector.iter({ region: 'us' });
    assert.equal(iter.next()!.name, 'eu');
    assert.equal(iter.reason, 'preferred', 'the us tier is empty: eu is simply the best usable');
  });

  it('stays in a region that is simply farther, however much faster another region answers', () => {
    const { members, share, now } = setup(spec);
    for (let i = 0; i < 30; i++) members[0]!.latency.observe(2, now());
    assert.deepEqual(share(5, { region: 'us' }), { 'us-fast': 5 });
  });

  it('spills out of a degraded region: its best origin 3× and 50 ms slower than its own baseline', () => {
    const { members, share, now, advance } = setup([
      { name: 'eu', ms: 30, region: 'eu' },
      { name: 'us', ms: 60, region: 'us' },
    ]);
    advance(10);
    const answer = (ms: number, times: number) => {
      for (let i = 0; i < times; i++) members[1]!.latency.observe(ms, now());
    };
    answer(300, 3); // 60 → 199 ms; baseline 67 ms: not yet 3×
    assert.deepEqual(share(5, { region: 'us' }), { us: 5 });
    answer(300, 1); // 224 ms; baseline 69.5 ms
    assert.deepEqual(share(5, { region: 'us' }), { eu: 5 });
    answer(60, 6); // back to 96 ms
    assert.deepEqual(share(5, { region: 'us' }), { us: 5 }, 'back once no longer 3× its baseline');
  });
});

describe('the iterator for one request', () => {
  it('yields each origin once, best first, and then nothing', () => {
    const { selector } = setup([
      { name: 'c', ms: 30 },
      { name: 'a', ms: 10 },
      { name: 'b', ms: 20 },
    ]);
    const iter = selector.iter();
    const names = [iter.next()?.name, iter.next()?.name, iter.next()?.name, iter.next()?.name];
    assert.deepEqual(names, ['a', 'b', 'c', undefined]);
    assert.equal(iter.attempts, 3);
  });

  it('uses backups only when no member is usable, and tries ejected members rather than nothing', () => {
    const { members, selector, now } = setup([{ name: 'a', ms: 10 }], 'latency', {
      backups: [{ name: 'spare', ms: 90 }],
    });
    assert.equal(selector.iter().next()!.name, 'a');
    eject(members[0]!, now() + 5000);
    const iter = selector.iter();
    assert.equal(iter.next()!.name, 'spare');
    assert.equal(iter.reason, 'backup');
    assert.equal(iter.next()!.name, 'a');
    assert.equal(iter.reason, 'panic');
  });

  it('chooses the one origin of a site in every mode, region and load, then backups, as a site of several would', () => {
    const modes: SelectionMode[] = ['latency', 'round-robin', 'least-request', 'hash'];
    for (const mode of modes) {
      for (const request of [{}, { region: 'eu' }, { region: 'us', key: 'https://example.com/a' }]) {
        const { members, selector, now } = setup([{ name: 'a', ms: 10, region: 'eu', max: 2 }], mode, {
          backups: [{ name: 'spare', ms: 90 }],
        });
        // Saturated, stale, unmeasured or not: the only member is chosen, as preferred.
        for (const pending of [0, 2, 5]) {
          members[0]!.pending = pending;
          const iter = selector.iter(request);
          assert.equal(iter.next()!.name, 'a', `${mode} ${JSON.stringify(request)} pending ${pending}`);
          assert.equal(iter.reason, 'preferred');
          assert.equal(iter.next()!.name, 'spare');
          assert.equal(iter.reason, 'backup');
          assert.equal(iter.next(), undefined);
          assert.equal(iter.attempts, 2);
        }
        members[0]!.pending = 0;
        eject(members[0]!, now() + 5000);
        const iter = selector.iter(request);
        assert.equal(iter.next()!.name, 'spare');
        assert.equal(iter.next()!.name, 'a');
        assert.equal(iter.reason, 'panic');
      }
    }
  });

  it('brings an ejected origin back in slow start: a tenth of its share at first, all of it after slowStart', () => {
    const { members, share, now, advance } = setup(
      [
        { name: 'near', ms: 10 },
        { name: 'mid', ms: 50 },
      ],
      'latency',
      { slowStart: 10_000 },
    );
    eject(members[0]!, now() + 1000);
    assert.deepEqual(share(5), { mid: 5 });
    advance(1000);
    members[0]!.latency.observe(10, now());
    members[1]!.latency.observe(50, now());
    assert.equal(members[0]!.status(now(), 10_000), 'slow-start');
    assert.deepEqual(share(5), { mid: 5 }, '10 ms ÷ 0.1 costs more than 50 ms');
    advance(5000);
    members[0]!.latency.observe(10, now());
    members[1]!.latency.observe(50, now());
    assert.deepEqual(share(5), { near: 5 }, '10 ms ÷ 0.6 beats 50 ms');
    advance(5000);
    assert.equal(members[0]!.status(now(), 10_000), 'healthy');
  });
});

describe('other selection modes', () => {
  it('round-robin takes each fit origin of the tier in turn', () => {
    const { share } = setup(
      [
        { name: 'a', ms: 10 },
        { name: 'b', ms: 50 },
        { name: 'c', ms: 200 },
      ],
      'round-robin',
    );
    assert.deepEqual(share(300), { a: 100, b: 100, c: 100 });
  });

  it('round-robin gives each origin a share by its weight, spread out (smooth weighted round robin)', () => {
    const { share } = setup([{ name: 'a' }, { name: 'b', weight: 3 }], 'round-robin');
    assert.deepEqual(share(400), { a: 100, b: 300 });
    const members = origins([{ name: 'a' }, { name: 'b', weight: 3 }]);
    const selector = new OriginSelector(members, [], { selection: 'round-robin', slowStart: 0 }, () => START);
    const order = Array.from({ length: 8 }, () => selector.iter().next()!.name).join('');
    assert.equal(order, 'babbbabb', 'one in four, never two in a row');
  });

  it('round-robin brings an ejected origin back in slow start: a tenth of its turns at first, all after slowStart', () => {
    const { members, share, now, advance } = setup([{ name: 'a' }, { name: 'b' }], 'round-robin', {
      slowStart: 10_000,
    });
    assert.deepEqual(share(100), { a: 50, b: 50 });
    eject(members[0]!, now() + 1000);
    assert.deepEqual(share(10), { b: 10 });
    advance(1000); // the ejection ends: slow start from a tenth of a's weight
    assert.equal(members[0]!.status(now(), 10_000), 'slow-start');
    const early = share(110);
    assert.ok((early.a ?? 0) <= 12, `a got ${early.a} of 110 at a tenth of its weight`);
    advance(5000); // halfway: about 0.6 of its weight
    const half = share(160);
    assert.ok(half.a! >= 50 && half.a! <= 70, `a got ${half.a} of 160 at 0.6 of its weight`);
    advance(5000);
    assert.equal(members[0]!.status(now(), 10_000), 'healthy');
    assert.deepEqual(share(100), { a: 50, b: 50 });
  });

  it('least-request picks the origin with the fewest requests in flight, ties split at random', () => {
    const { members, share, now } = setup([{ name: 'a' }, { name: 'b' }, { name: 'c' }], 'least-request');
    const spread = share(300);
    assert.equal(Object.keys(spread).length, 3);
    for (const count of Object.values(spread)) assert.ok(count > 60, JSON.stringify(spread));
    members[0]!.start(now());
    members[1]!.start(now());
    assert.deepEqual(share(10), { c: 10 });
  });

  it('hash sends a key to the same origin every time, and removing one moves only its keys', () => {
    const spec = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
    const three = setup(spec, 'hash');
    const two = setup([spec[0]!, spec[2]!], 'hash');
    const keys = Array.from({ length: 600 }, (_, i) => `https://cdn.example/${'p'.repeat(90)}/${i}.jpg`);
    let moved = 0;
    const counts: Record<string, number> = {};
    for (const key of keys) {
      const before = three.selector.iter({ key }).next()!.name;
      assert.equal(three.selector.iter({ key }).next()!.name, before);
      counts[before] = (counts[before] ?? 0) + 1;
      const after = two.selector.iter({ key }).next()!.name;
      if (before !== 'b') assert.equal(after, before);
      else moved++;
    }
    assert.equal(moved, counts.b);
    for (const count of Object.values(counts)) assert.ok(count > 150 && count < 250, JSON.stringify(counts));
  });

  it('weights rendezvous scores: an origin of weight 3 takes about three times the keys', () => {
    let heavy = 0;
    for (let i = 0; i < 2000; i++) {
      if (rendezvousScore(`/k/${i}`, 'heavy', 3) > rendezvousScore(`/k/${i}`, 'light', 1)) heavy++;
    }
    assert.ok(heavy > 1400 && heavy < 1600, String(heavy));
  });
});

describe('latency estimate over time', () => {
  it('decays toward 0 while an origin gets no traffic, so a single slow answer does not keep it out for good', () => {
    const { members, share, now, advance } = setup([
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    for (let i = 0; i < 8; i++) {
      members[0]!.latency.observe(10, now());
      members[1]!.latency.observe(50, now());
    }
    members[0]!.latency.observe(400, now());
    assert.deepEqual(share(3), { mid: 3 });
    // near reads 107.5 ms; mid keeps answering in 50 ms (read as 44 ms: sampled every 500 ms,
    // it decays a little between samples); near, idle, decays below it after 10 s × ln(107.5 / 44) ≈ 9 s.
    for (let i = 0; i < 14; i++) {
      advance(500);
      members[1]!.latency.observe(50, now());
    }
    assert.deepEqual(share(1), { mid: 1 }, 'after 7 s: not yet');
    for (let i = 0; i < 6; i++) {
      advance(500);
      members[1]!.latency.observe(50, now());
    }
    assert.deepEqual(share(1), { near: 1 }, 'tried again, and measured');
  });

  it('re-measures within 2 s an origin whose only answer so far was slow (a stall while measuring)', () => {
    const { members, share, now, advance } = setup([{ name: 'near' }, { name: 'mid' }]);
    for (let i = 0; i < 8; i++) members[1]!.latency.observe(50, now());
    members[0]!.latency.observe(150, now());
    assert.deepEqual(share(2), { mid: 2 });
    for (let i = 0; i < 4; i++) {
      advance(500);
      members[1]!.latency.observe(50, now());
    }
    assert.deepEqual(share(1), { near: 1 });
  });

  it('is not moved by one stall: a 10 ms origin answering once in 90 ms keeps its traffic over a 50 ms one', () => {
    const { members, share, now } = setup([
      { name: 'near', ms: 10 },
      { name: 'mid', ms: 50 },
    ]);
    members[0]!.latency.observe(90, now());
    assert.deepEqual(share(3), { near: 3 });
  });
});

describe('a selector whose origins were all removed by a reload', () => {
  it('still yields them (draining) to a request that resolved its site before the reload', () => {
    const { members, selector } = setup([{ name: 'a', ms: 10 }]);
    members[0]!.draining = true;
    const iter = selector.iter();
    assert.equal(iter.next()?.name, 'a');
    assert.equal(iter.reason, 'panic');
    assert.equal(iter.next(), undefined);
  });
});
