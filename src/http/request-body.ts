/**
 * A client request body on its way to an origin, bounded in time so that a slow client
 * cannot hold an origin connection: a body of known length up to `bufferLimit` is received
 * whole before the origin is asked; a larger or chunked one streams, and any pause longer
 * than `idleTimeout` ends it with EDGE_ERR_CLIENT_BODY_TIMEOUT (which aborts the origin
 * request and frees its connection).
 */
import type { IncomingMessage } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { EdgeError } from '../errors.ts';

export interface BodyLimits {
  bufferLimit: number;
  idleTimeout: number;
}

export interface RequestBody {
  readonly stream: Readable;
  /** Whether the body ended because the client paused too long. */
  readonly timedOut: () => boolean;
}

export async function requestBody(req: IncomingMessage, limits: BodyLimits): Promise<RequestBody> {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? Number.NaN : Number(declared);
  if (req.headers['transfer-encoding'] === undefined && length <= limits.bufferLimit) {
    const whole = await receiveWhole(req, length, limits.idleTimeout);
    return { stream: Readable.from([whole]), timedOut: () => false };
  }
  const guard = new IdleGuard(limits.idleTimeout);
  req.once('error', (error) => guard.destroy(error));
  req.pipe(guard);
  return { stream: guard, timedOut: () => guard.expired };
}

function bodyTimeout(): EdgeError {
  return new EdgeError('EDGE_ERR_CLIENT_BODY_TIMEOUT', 'request body too slow');
}

/** The whole body, or a rejection when the client pauses too long or goes away. */
function receiveWhole(req: IncomingMessage, length: number, idleTimeout: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(fail, idleTimeout, bodyTimeout());
    timer.unref();
    function fail(error: Error): void {
      clearTimeout(timer);
      req.off('data', onData);
      reject(error);
    }
    function onData(chunk: Buffer): void {
      chunks.push(chunk);
      received += chunk.length;
      timer.refresh();
    }
    req.on('data', onData);
    req.once('end', () => {
      clearTimeout(timer);
      if (received !== length)
        return reject(new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'request body incomplete'));
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    });
    req.once('error', (error) => fail(error));
    req.once('close', () => {
      if (!req.complete) fail(new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'request body incomplete'));
    });
  });
}

/** Passes the body through; a pause longer than `idleTimeout` destroys it with a body timeout. */
class IdleGuard extends Transform {
  expired = false;
  readonly #timer: NodeJS.Timeout;

  constructor(idleTimeout: number) {
    super();
    this.#timer = setTimeout(() => {
      // Waiting on the origin to take what it has is not the client's pause.
      if (this.writableLength > 0 || this.readableLength >= this.readableHighWaterMark) {
        this.#timer.refresh();
        return;
      }
      this.expired = true;
      this.destroy(bodyTimeout());
    }, idleTimeout);
    this.#timer.unref();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#timer.refresh();
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    clearTimeout(this.#timer);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    callback(error);
  }
}
