/**
 * Connection caps of a client listener: at most `max` connections at once, and at most
 * `perClient` from one client (an IPv4 address, an IPv6 /64). A connection over either cap is
 * closed as soon as it is accepted, before a byte is read (one client opening thousands of idle
 * connections cannot take the node's file descriptors or starve other clients). 0 disables a cap.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { clientKey } from '../security/gcra.ts';
import { refuseFurtherRequests } from './connection-guard.ts';

export interface ConnectionCaps {
  max: number;
  perClient: number;
  /** Told of each connection closed for a cap. */
  onRefused?: (cap: 'max' | 'per-client') => void;
}

export interface ConnectionCounter {
  /** Connections open now. */
  readonly open: number;
  /** Connections refused since the listener started. */
  readonly refused: number;
}

/**
 * Open connections per client address. An address whose last connection closed keeps its entry
 * (at 0) until enough such entries gather to sweep them in one pass: deleting it at once, then
 * setting it again at its next connection, left a deleted copy of the key in its hash chain per
 * connection, walked by every later lookup of it until V8 rebuilt the table (a client opening
 * connection after connection paid for every address held; see memory-tier.ts).
 */
export class ClientCounts {
  readonly #counts = new Map<string, number>();
  /** Entries at 0. */
  #idle = 0;
  readonly #sweepAt: number;

  constructor(sweepAt = 1024) {
    this.#sweepAt = sweepAt;
  }

  /** Open connections of `address`. */
  get(address: string): number {
    return this.#counts.get(address) ?? 0;
  }

  /** Entries held, idle ones included. */
  get size(): number {
    return this.#counts.size;
  }

  opened(address: string): void {
    const count = this.#counts.get(address);
    if (count === 0) this.#idle--;
    this.#counts.set(address, (count ?? 0) + 1);
  }

  closed(address: string): void {
    const count = this.#counts.get(address);
    if (count === undefined || count === 0) return;
    this.#counts.set(address, count - 1);
    if (count > 1) return;
    this.#idle++;
    // Swept when idle entries are many and at least half of all: each sweep is paid for by
    // as many closes as it removes entries.
    if (this.#idle >= this.#sweepAt && this.#idle * 2 >= this.#counts.size) {
      for (const [key, open] of this.#counts) if (open === 0) this.#counts.delete(key);
      this.#idle = 0;
    }
  }
}

export function capConnections(server: Server, caps: ConnectionCaps): ConnectionCounter {
  const byClient = new ClientCounts();
  const counter = { open: 0, refused: 0 };
  if (caps.max === 0 && caps.perClient === 0) return counter;
  server.on('connection', (socket) => {
    // An IPv6 client is its /64, as for rate limits: rotating addresses in it buys no connections.
    const address = clientKey(socket.remoteAddress ?? '');
    const mine = byClient.get(address);
    const over =
      caps.max > 0 && counter.open >= caps.max
        ? 'max'
        : caps.perClient > 0 && mine >= caps.perClient
          ? 'per-client'
          : undefined;
    if (over !== undefined) {
      counter.refused++;
      socket.destroy();
      caps.onRefused?.(over);
      return;
    }
    counter.open++;
    byClient.opened(address);
    socket.once('close', () => {
      counter.open--;
      byClient.closed(address);
    });
  });
  return counter;
}

/**
 * At most `max` requests per connection (0: no limit): the last is answered with
 * `Connection: close` and the connection ends after it; nothing pipelined behind it is
 * dispatched. (node:http's own maxRequestsPerSocket answers the extra requests 503 and keeps
 * the connection open.)
 */
export function limitRequests<H extends (req: IncomingMessage, res: ServerResponse) => void>(
  handler: H,
  max: number,
): H {
  if (max <= 0) return handler;
  const counts = new WeakMap<Socket, number>();
  return ((req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const count = (counts.get(socket) ?? 0) + 1;
    counts.set(socket, count);
    if (count >= max) {
      res.shouldKeepAlive = false;
      refuseFurtherRequests(req);
    }
    handler(req, res);
  }) as H;
}
