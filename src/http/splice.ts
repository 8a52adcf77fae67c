/**
 * Two connections joined byte for byte (a tunnel after a 101): what one sends is written to the
 * other, with back-pressure both ways. A half-close is passed on (the FIN of one side ends the
 * other's writing side); once one side is fully closed, or fails, the other is ended and then
 * destroyed, so neither connection outlives the tunnel. No byte either way for `idleMs` closes both.
 */
import type { Socket } from 'node:net';

/** Why a tunnel ended: which side closed first, its idle timeout, or `close()` (shutdown). */
export type SpliceEnd = 'client' | 'origin' | 'idle' | 'shutdown';

export interface SpliceResult {
  /** Bytes the client sent that were written to the origin. */
  toOrigin: number;
  /** Bytes the origin sent that were written to the client. */
  toClient: number;
  end: SpliceEnd;
}

export interface Splice {
  /** Resolves once both connections are closed. */
  readonly done: Promise<SpliceResult>;
  /** Closes both connections now. */
  close(): void;
}

/** How long a side that was ended may take to close its own side before it is destroyed. */
const LINGER_MS = 5000;

export function splice(client: Socket, origin: Socket, idleMs: number): Splice {
  const result: SpliceResult = { toOrigin: 0, toClient: 0, end: 'client' };
  let ended = false;
  const finish = (why: SpliceEnd): void => {
    if (ended) return;
    ended = true;
    result.end = why;
  };
  const { promise, resolve } = Promise.withResolvers<SpliceResult>();
  let open = 2;
  const closed = (): void => {
    open--;
    if (open === 0) resolve(result);
  };
  const close = (why: SpliceEnd): void => {
    finish(why);
    client.destroy();
    origin.destroy();
  };
  pump(client, origin, (n) => {
    result.toOrigin += n;
  });
  pump(origin, client, (n) => {
    result.toClient += n;
  });
  for (const [side, other, name] of [
    [client, origin, 'client'],
    [origin, client, 'origin'],
  ] as const) {
    side.on('error', () => close(name));
    side.once('end', () => finish(name));
    side.once('close', () => {
      finish(name);
      // Whatever the other side still has to write goes out first; then it is closed for good.
      if (!other.destroyed) {
        other.end();
        const linger = setTimeout(() => other.destroy(), LINGER_MS);
        linger.unref();
        other.once('close', () => clearTimeout(linger));
      }
      closed();
    });
  }
  // Any byte read or written on the client side is activity in one direction or the other.
  client.setTimeout(idleMs, () => close('idle'));
  origin.setTimeout(0);
  return { done: promise, close: () => close('shutdown') };
}

/** Copies what `from` reads into `to`, pausing `from` while `to` is full; a FIN is passed on. */
function pump(from: Socket, to: Socket, count: (bytes: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed || to.writableEnded) return;
    count(chunk.length);
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.once('end', () => {
    if (!to.destroyed && !to.writableEnded) to.end();
  });
  from.resume();
}
