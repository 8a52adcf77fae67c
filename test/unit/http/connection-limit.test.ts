import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:net';
import { describe, it } from 'node:test';
import { ClientCounts, capConnections } from '../../../src/http/connection-limit.ts';

describe('ClientCounts', () => {
  it('counts the open connections of each address', () => {
    const counts = new ClientCounts();
    counts.opened('192.0.2.1');
    counts.opened('192.0.2.1');
    counts.opened('2001:db8::7');
    assert.equal(counts.get('192.0.2.1'), 2);
    assert.equal(counts.get('2001:db8::7'), 1);
    assert.equal(counts.get('198.51.100.9'), 0);
    counts.closed('192.0.2.1');
    assert.equal(counts.get('192.0.2.1'), 1);
    counts.closed('192.0.2.1');
    counts.closed('192.0.2.1'); // one close too many is harmless
    counts.closed('198.51.100.9');
    assert.equal(counts.get('192.0.2.1'), 0);
  });

  it('keeps an address whose connections all closed until a sweep (no delete per connection)', () => {
    const counts = new ClientCounts(4);
    for (let i = 0; i < 100; i++) {
      counts.opened('192.0.2.1');
      counts.closed('192.0.2.1');
    }
    assert.equal(counts.size, 1, 'one entry for a client that connects again and again');
    assert.equal(counts.get('192.0.2.1'), 0);
  });

  it('sweeps idle addresses once they are many and half of all, and stays bounded', () => {
    const counts = new ClientCounts(4);
    for (let i = 0; i < 10; i++) counts.opened(`198.51.100.${i}`); // ten clients stay connected
    for (let i = 0; i < 10_000; i++) {
      const address = `203.0.113.${i % 250}:${i}`; // a new address every time
      counts.opened(address);
      counts.closed(address);
      assert.ok(counts.size <= 2 * 10 + 4 + 1, `bounded after ${i + 1} passing clients: ${counts.size}`);
    }
    for (let i = 0; i < 10; i++)
      assert.equal(counts.get(`198.51.100.${i}`), 1, 'connected clients keep their count');
  });
});

describe('capConnections', () => {
  /** Connections from `address` as node:net hands them to the listener; true: closed at once. */
  function connect(server: EventEmitter, address: string): boolean {
    let destroyed = false;
    const socket = Object.assign(new EventEmitter(), {
      remoteAddress: address,
      destroy: () => {
        destroyed = true;
      },
    });
    server.emit('connection', socket);
    return destroyed;
  }

  it('counts an IPv6 client by its /64, as rate limits do: rotating addresses buys no connections', () => {
    const server = new EventEmitter();
    capConnections(server as unknown as Server, { max: 0, perClient: 2 });
    assert.equal(connect(server, '2001:db8:1:2::1'), false);
    assert.equal(connect(server, '2001:db8:1:2::2'), false);
    assert.equal(connect(server, '2001:db8:1:2:ffff::3'), true, 'a third address of the same /64');
    assert.equal(connect(server, '2001:db8:1:3::1'), false, 'another /64');
    assert.equal(connect(server, '::ffff:192.0.2.1'), false);
    assert.equal(connect(server, '::ffff:192.0.2.1'), false);
    assert.equal(connect(server, '::ffff:192.0.2.1'), true);
  });
});
