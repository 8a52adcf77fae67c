/**
 * The last step of a draining worker: its listeners are closed and its requests done; before
 * the process exits it sends 'leaving' and waits for the primary to echo it (protocol.ts,
 * LeavingMessage). node:cluster hands a connection to a worker in a message and keeps its own
 * copy of the socket open until the worker answers; messages arrive in order, so once the echo
 * is back no such message is left unread, and no client is left connected to nobody.
 */
import type { EventEmitter } from 'node:events';
import { isStrataMessage, type LeavingMessage, type PrimaryMessage } from './protocol.ts';

/** Longest wait for the echo (the primary answers at once unless it is gone or stuck). */
export const LEAVING_MS = 2000;

/** The worker's side of the IPC channel (the process object in a worker; a fake in tests). */
export interface ParentChannel {
  readonly connected: boolean;
  send(message: LeavingMessage): void;
  /** Emits 'message' for each message from the primary and 'disconnect' when the channel closes. */
  readonly events: EventEmitter;
}

/** Resolves once the primary echoed 'leaving', the channel closed, or `timeoutMs` passed. */
export function leave(parent: ParentChannel, timeoutMs = LEAVING_MS): Promise<void> {
  if (!parent.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      parent.events.off('message', echoed);
      parent.events.off('disconnect', done);
      resolve();
    };
    const echoed = (message: unknown) => {
      if (isStrataMessage<PrimaryMessage>(message) && message.strata === 'leaving') done();
    };
    const timer = setTimeout(done, timeoutMs);
    parent.events.on('message', echoed);
    parent.events.on('disconnect', done);
    parent.send({ strata: 'leaving' });
  });
}
