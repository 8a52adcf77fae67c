import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CacheStore } from '../../../src/cache/store.ts';
import { ClusterCollapseTable, type LockChannel } from '../../../src/cluster/cluster-collapse.ts';
import type { LockMessage, WorkerMessage } from '../../../src/cluster/protocol.ts';

/** A worker's table on a fake channel to the primary, and a store that counts commit holds. */
function setup() {
  const sent: WorkerMessage[] = [];
  let deliver: (message: LockMessage) => void = () => {};
  const channel: LockChannel = {
    send: (message) => sent.push(message),
    onMessage: (listener) => {
      deliver = listener;
    },
    connected: true,
  };
  const holds = { taken: 0, released: 0 };
  const store = {
    holdCommits: () => {
      holds.taken++;
      return () => holds.released++;
    },
    resetReadTxn: () => {},
  } as unknown as CacheStore;
  const table = new ClusterCollapseTable(120_000, Date.now, channel, 30_000);
  table.attach(store);
  return { table, sent, holds, deliver: (message: LockMessage) => deliver(message) };
}

describe('ClusterCollapseTable: another worker waits for a key this one leads', () => {
  it("holds the store's commits from a 'hurry' that comes with the verdict, until the leadership ends", async () => {
    const { table, sent, holds, deliver } = setup();
    const settle = table.lead('https://shop.example/catalogue/boots.html?size=42');
    const claim = table.claim('https://shop.example/catalogue/boots.html?size=42', true);
    const acquire = sent.find((m) => m.strata === 'acquire') as { id: number };
    // One read of the IPC channel: the verdict and the hurry, before the claim's continuation runs.
    deliver({ strata: 'verdict', id: acquire.id, verdict: 'lead' });
    deliver({ strata: 'hurry', id: acquire.id });
    assert.deepEqual(holds, { taken: 1, released: 0 });
    deliver({ strata: 'hurry', id: acquire.id });
    assert.equal(holds.taken, 1, 'once per leadership');
    assert.deepEqual(await claim, { kind: 'lead' });
    settle({ kind: 'uncacheable' });
    assert.deepEqual(holds, { taken: 1, released: 1 });
    assert.ok(sent.some((m) => m.strata === 'release'));
    deliver({ strata: 'hurry', id: acquire.id });
    assert.equal(holds.taken, 1, 'a hurry for an ended leadership holds nothing');
  });
});
