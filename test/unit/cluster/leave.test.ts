import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it, mock } from 'node:test';
import { LEAVING_MS, leave, type ParentChannel } from '../../../src/cluster/leave.ts';
import type { LeavingMessage } from '../../../src/cluster/protocol.ts';

function channel(connected = true) {
  const sent: LeavingMessage[] = [];
  const events = new EventEmitter();
  const parent: ParentChannel = { connected, send: (message) => sent.push(message), events };
  return { parent, sent, events };
}

/** Lets pending callbacks and promise reactions run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('a draining worker leaves', () => {
  it('sends leaving and exits only once the primary echoed it, after what came before', async () => {
    const { parent, sent, events } = channel();
    let left = false;
    const leaving = leave(parent).then(() => {
      left = true;
    });
    assert.deepEqual(sent, [{ strata: 'leaving' }]);
    await turn();
    assert.equal(left, false, 'waits for the echo');
    // What the primary sent before the echo (a handover node:cluster answers itself, another
    // message of ours) does not end the wait.
    events.emit('message', { cmd: 'NODE_CLUSTER', act: 'newconn', key: '127.0.0.1:8080:4' });
    events.emit('message', { strata: 'ticket-keys', keys: 'AAAA' });
    await turn();
    assert.equal(left, false);
    events.emit('message', { strata: 'leaving' });
    await leaving;
    assert.equal(left, true);
    assert.equal(events.listenerCount('message'), 0);
    assert.equal(events.listenerCount('disconnect'), 0);
  });

  it('does not wait without a primary, or once the channel closes', async () => {
    const gone = channel(false);
    await leave(gone.parent);
    assert.deepEqual(gone.sent, []);
    const closing = channel();
    const leaving = leave(closing.parent);
    closing.events.emit('disconnect');
    await leaving;
    assert.equal(closing.events.listenerCount('message'), 0);
  });

  it('gives up waiting after LEAVING_MS', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { parent, events } = channel();
      let left = false;
      const leaving = leave(parent).then(() => {
        left = true;
      });
      mock.timers.tick(LEAVING_MS - 1);
      await Promise.resolve();
      assert.equal(left, false);
      mock.timers.tick(1);
      await leaving;
      assert.equal(left, true);
      assert.equal(events.listenerCount('message'), 0);
    } finally {
      mock.timers.reset();
    }
  });
});
