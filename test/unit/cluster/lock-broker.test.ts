import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { LockBroker } from '../../../src/cluster/lock-broker.ts';
import type { FillAnnouncement, LockMessage } from '../../../src/cluster/protocol.ts';
import { freshness } from '../../helpers/records.ts';

const FILL: FillAnnouncement = {
  bodyId: 'body-1',
  status: 200,
  headers: ['content-length', '10'],
  vary: [],
  secondaryKey: '',
  freshness: freshness(),
};

let broker: LockBroker | undefined;

function setup() {
  const sent: Array<[number, LockMessage]> = [];
  /** The 'hurry' messages, kept apart: the other tests follow the lock's states. */
  const hurried: Array<[number, number]> = [];
  broker = new LockBroker({
    send: (worker, message) =>
      message.strata === 'hurry' ? hurried.push([worker, message.id]) : sent.push([worker, message]),
    hitForPassMs: 120_000,
    leaseMs: 60_000,
    now: Date.now,
  });
  return { broker, sent, hurried };
}

afterEach(() => broker?.close());

describe('LockBroker', () => {
  it('marks an uncacheable key hit-for-pass, but not for a refusal that answers one client', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'private', true);
    broker.acquire(2, 2, 'private', true);
    broker.release(1, 1, 'uncacheable');
    broker.acquire(2, 3, 'private', true);
    broker.acquire(1, 4, 'refused', true);
    broker.acquire(2, 5, 'refused', true);
    broker.release(1, 4, 'refused');
    broker.acquire(2, 6, 'refused', true);
    assert.deepEqual(
      sent.filter(([, m]) => m.strata === 'verdict' && m.id !== 1 && m.id !== 4),
      [
        [2, { strata: 'verdict', id: 2, verdict: 'uncacheable' }],
        [2, { strata: 'verdict', id: 3, verdict: 'uncacheable' }],
        [2, { strata: 'verdict', id: 5, verdict: 'refused' }],
        [2, { strata: 'verdict', id: 6, verdict: 'lead' }],
      ],
    );
  });

  it("hurries the leader's worker once per lock when another worker waits for the key", () => {
    const { broker, hurried } = setup();
    broker.acquire(1, 1, 'a', true);
    broker.acquire(1, 2, 'a', true); // a waiter in the leader's own worker: it holds commits itself
    broker.acquire(2, 3, 'a', false); // not waiting: told 'busy'
    assert.deepEqual(hurried, []);
    broker.acquire(2, 4, 'a', true);
    broker.acquire(3, 5, 'a', true);
    broker.announce(1, 1, FILL, 0);
    broker.acquire(2, 6, 'a', true); // a reader of the announced fill
    assert.deepEqual(hurried, [[1, 1]], "the leader's worker, with the leader's request id");
    broker.release(1, 1, 'done');
    broker.acquire(2, 7, 'a', true);
    broker.acquire(1, 8, 'a', true);
    assert.deepEqual(
      hurried,
      [
        [1, 1],
        [2, 7],
      ],
      'a new lock of the key hurries its own leader',
    );
  });

  it("tells waiters 'failed' when the leader failed and 'look-again' when its fetch ended", () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'a', true);
    broker.acquire(2, 2, 'a', true);
    broker.release(1, 1, 'failed');
    broker.acquire(2, 3, 'b', true);
    broker.acquire(1, 4, 'b', true);
    broker.release(2, 3, 'done');
    assert.deepEqual(
      sent.filter(([, m]) => m.strata === 'verdict' && m.verdict !== 'lead'),
      [
        [2, { strata: 'verdict', id: 2, verdict: 'failed' }],
        [1, { strata: 'verdict', id: 4, verdict: 'look-again' }],
      ],
    );
  });

  it('gives a purged key a new lock for later askers while the old fill goes on for its readers', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'http://a.test/page', true);
    broker.acquire(2, 2, 'http://a.test/page', true);
    broker.announce(1, 1, { ...FILL, tags: ['t'] }, 0);
    assert.equal(broker.purgeFills({ all: false, keys: [], prefixes: [], tags: ['t'] }), 1);
    broker.acquire(2, 3, 'http://a.test/page', true);
    broker.committed(1, 1, 1);
    broker.release(1, 1, 'done', 1);
    assert.deepEqual(sent, [
      [1, { strata: 'verdict', id: 1, verdict: 'lead' }],
      [2, { strata: 'fill', id: 2, fill: { ...FILL, tags: ['t'] }, committed: 0 }],
      [2, { strata: 'verdict', id: 3, verdict: 'lead' }],
      [2, { strata: 'committed', id: 2, committed: 1 }],
      [2, { strata: 'fill-end', id: 2, chunks: 1 }],
    ]);
    // The new lock is untouched by the old one's end.
    assert.equal(broker.locks, 1);
    broker.acquire(1, 4, 'http://a.test/page', true);
    assert.equal(broker.waiters, 1);
  });

  it('closes by key, prefix or all, and a lock whose tags are unknown to any tag purge', () => {
    const { broker } = setup();
    broker.acquire(1, 1, 'http://a.test/x', true);
    assert.equal(broker.purgeFills({ all: false, keys: ['http://a.test/y'], prefixes: [], tags: [] }), 0);
    assert.equal(broker.purgeFills({ all: false, keys: [], prefixes: ['http://b.test/'], tags: [] }), 0);
    assert.equal(broker.purgeFills({ all: false, keys: [], prefixes: [], tags: ['any'] }), 1);
    broker.acquire(1, 2, 'http://a.test/x', true);
    assert.equal(broker.purgeFills({ all: false, keys: [], prefixes: ['http://a.test/'], tags: [] }), 1);
    broker.acquire(1, 3, 'http://a.test/x', true);
    assert.equal(broker.purgeFills({ all: true, keys: [], prefixes: [''], tags: [] }), 1);
    assert.equal(broker.locks, 3);
    broker.release(1, 1, 'failed');
    broker.release(1, 2, 'failed');
    broker.release(1, 3, 'failed');
    assert.equal(broker.locks, 0);
  });

  it('hands an announced fill to the workers waiting and to those asking later', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'k', true);
    broker.acquire(2, 7, 'k', true);
    broker.announce(1, 1, FILL, 0);
    broker.acquire(3, 4, 'k', true);
    broker.committed(1, 1, 2);
    assert.deepEqual(sent, [
      [1, { strata: 'verdict', id: 1, verdict: 'lead' }],
      [2, { strata: 'fill', id: 7, fill: FILL, committed: 0 }],
      [3, { strata: 'fill', id: 4, fill: FILL, committed: 0 }],
      [2, { strata: 'committed', id: 7, committed: 2 }],
      [3, { strata: 'committed', id: 4, committed: 2 }],
    ]);
    assert.equal(broker.waiters, 2);
  });

  it('tells readers the chunk count when the fill is whole, and nothing when it failed', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'a', true);
    broker.acquire(2, 2, 'a', true);
    broker.announce(1, 1, FILL, 0);
    broker.release(1, 1, 'done', 3);
    broker.acquire(1, 3, 'b', true);
    broker.acquire(2, 4, 'b', true);
    broker.announce(1, 3, FILL, 1);
    broker.release(1, 3, 'done');
    assert.deepEqual(
      sent.filter(([, m]) => m.strata === 'fill-end'),
      [
        [2, { strata: 'fill-end', id: 2, chunks: 3 }],
        [2, { strata: 'fill-end', id: 4 }],
      ],
    );
    assert.equal(broker.locks, 0);
    assert.equal(broker.waiters, 0);
  });

  it('ends the fill as failed when the leading worker dies, saying so, and forgets a dead reader', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'k', true);
    broker.acquire(2, 2, 'k', true);
    broker.acquire(3, 3, 'k', true);
    broker.announce(1, 1, FILL, 0);
    broker.workerGone(3);
    assert.equal(broker.waiters, 1);
    broker.workerGone(1);
    // 'exited': a reader that sent its client nothing yet asks again instead of failing it.
    assert.deepEqual(sent.at(-1), [2, { strata: 'fill-end', id: 2, exited: true }]);
    assert.equal(broker.locks, 0);
    // The key is free: the reader that asks again leads.
    broker.acquire(2, 5, 'k', true);
    assert.deepEqual(sent.at(-1), [2, { strata: 'verdict', id: 5, verdict: 'lead' }]);
  });

  it('ignores progress from a worker that does not lead the key', () => {
    const { broker, sent } = setup();
    broker.acquire(1, 1, 'k', true);
    broker.acquire(2, 2, 'k', true);
    broker.announce(2, 2, FILL, 0);
    broker.committed(2, 2, 5);
    assert.deepEqual(sent, [[1, { strata: 'verdict', id: 1, verdict: 'lead' }]]);
  });
});
