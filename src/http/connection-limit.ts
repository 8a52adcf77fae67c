/**
 * Connection caps of a client listener: at most `max` connections at once, and at most
 * `perClient` from one address. A connection over either cap is closed as soon as it is
 * accepted, before a byte is read (one client opening thousands of idle connections cannot
 * take the node's file descriptors or starve other clients). 0 disables a cap.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
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

export function capConnections(server: Server, caps: ConnectionCaps): ConnectionCounter {
  const byClient = new Map<string, number>();
  const counter = { open: 0, refused: 0 };
  if (caps.max === 0 && caps.perClient === 0) return counter;
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const mine = byClient.get(address) ?? 0;
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
    byClient.set(address, mine + 1);
    socket.once('close', () => {
      counter.open--;
      const left = (byClient.get(address) ?? 1) - 1;
      if (left <= 0) byClient.delete(address);
      else byClient.set(address, left);
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
