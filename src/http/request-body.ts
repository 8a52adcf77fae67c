/**
 * A client request body on its way to an origin, bounded in time so that a slow client
 * cannot hold an origin connection: a body of known length up to `bufferLimit` is received
 * whole before the origin is asked (a pause longer than `idleTimeout` ends it); a larger or
 * chunked one streams, and must bring `minRate` bytes per second over every `idleTimeout`
 * window. Either failure is EDGE_ERR_CLIENT_BODY_TIMEOUT (the origin request is aborted and
 * its connection freed).
 */
import type { IncomingMessage } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { EdgeError } from '../errors.ts';

/** Whether a request announces a body (RFC 9112 §6.3: Transfer-Encoding, or a non-zero Content-Length). */
export function hasRequestBody(req: IncomingMessage): boolean {
  const headers = req.headers;
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  if (length !== undefined) return length !== '0';
  // HTTP/2 ends a body with the stream (END_STREAM), not by a field (RFC 9113 §8.1): a body may
  // follow without Content-Length (h2-exchange.ts H2Request.bodyFollows).
  return (req as { bodyFollows?: boolean }).bodyFollows === true;
}

export interface BodyLimits {
  bufferLimit: number;
  /** Longest pause (a buffered body), and the window a streamed body's rate is checked over (ms). */
  idleTimeout: number;
  /** Bytes per second a streamed body must average over each window (0: any progress will do). */
  minRate: number;
  /** Largest body; a streamed (chunked) body past it is cut and tooLarge() says so. */
  maxBytes?: number;
}

export interface RequestBody {
  readonly stream: Readable;
  /** Whether the body ended because the client paused too long. */
  readonly timedOut: () => boolean;
  /** Whether the body ended because it grew past `maxBytes`. */
  readonly tooLarge: () => boolean;
}

export async function requestBody(req: IncomingMessage, limits: BodyLimits): Promise<RequestBody> {
  const refused = (req as Refusable)[kRefused];
  if (refused !== undefined) throw bodyMalformed(refused);
  const declared = req.headers['content-length'];
  const length = declared === undefined ? Number.NaN : Number(declared);
  if (req.headers['transfer-encoding'] === undefined && length <= limits.bufferLimit) {
    const whole = await receiveWhole(req, length, limits.idleTimeout);
    return { stream: Readable.from([whole]), timedOut: () => false, tooLarge: () => false };
  }
  const guard = new RateGuard(
    limits.idleTimeout,
    (limits.minRate * limits.idleTimeout) / 1000,
    limits.maxBytes ?? Number.POSITIVE_INFINITY,
  );
  // The origin request sees a client that went away as the body failing; the error itself
  // is reported there, never as an unhandled 'error' event (which would end the process).
  guard.on('error', ignore);
  req.on('error', (error) => guard.destroy(error));
  // A client gone before its body ended (an HTTP/2 stream reset ends without 'end' or 'error'):
  // the origin must see the body fail, never end short as if whole.
  req.once('close', () => {
    if (!req.complete) guard.destroy(bodyIncomplete());
  });
  req.pipe(guard);
  (req as Refusable)[kStream] = guard;
  return { stream: guard, timedOut: () => guard.expired, tooLarge: () => guard.overLimit };
}

function ignore(): void {}

const kRefused = Symbol('strata.body-refused');
const kStream = Symbol('strata.body-stream');
type Refusable = IncomingMessage & { [kRefused]?: Error; [kStream]?: Readable };

/**
 * node:http's parser refused the rest of `req`'s body (malformed chunked framing): the listener
 * answers and ends the connection, but `req` itself neither ends nor fails until the socket
 * closes (up to the keep-alive timeout later), and an origin request streaming it stayed open
 * that long. The body fails now: a stream on its way to an origin is destroyed (the origin
 * request aborted), and one not yet asked for is refused when it is.
 */
export function refuseBody(req: IncomingMessage, cause: Error): void {
  const refusable = req as Refusable;
  if (refusable[kRefused] !== undefined) return;
  refusable[kRefused] = cause;
  refusable[kStream]?.destroy(bodyMalformed(cause));
}

/**
 * The origin's answer ended before the request body did (it answered without reading it all):
 * the rest is read and dropped, bounded by the body limits and timeouts, so the connection's
 * next request is read after it (RFC 9112 §9.6; node:http does the same for a request nobody
 * read). Left piped to a body nobody reads any more, the connection hung until the client gave up.
 */
export function discardRest(req: IncomingMessage): void {
  if (req.complete || req.destroyed || typeof req.unpipe !== 'function') return;
  req.unpipe();
  req.resume();
}

/** The client went away (or its connection broke) before its body ended. */
function bodyIncomplete(cause?: Error): EdgeError {
  return new EdgeError(
    'EDGE_ERR_CLIENT_BAD_REQUEST',
    'request body incomplete',
    cause === undefined ? undefined : { cause },
  );
}

/** node:http's parser refused the body's framing (a bad chunk size, a chunk longer than it said). */
function bodyMalformed(cause: Error): EdgeError {
  return new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'request body malformed', { cause });
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
      if (received !== length) return reject(bodyIncomplete());
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    });
    // The client's doing, answered and logged as such (a raw 'aborted' or the request timeout
    // went on as an internal failure, answered with no status).
    req.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? bodyTimeout() : bodyIncomplete(error)),
    );
    req.once('close', () => {
      if (!req.complete) fail(bodyIncomplete());
    });
  });
}

/**
 * Passes the body through, checking it in windows of `window` ms: a window that brings less
 * than `minBytes` (at least one byte) ends it with a body timeout. A window in which the origin
 * was not taking what it had is not counted against the client.
 */
class RateGuard extends Transform {
  expired = false;
  overLimit = false;
  #received = 0;
  #total = 0;
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #timer: NodeJS.Timeout;

  constructor(window: number, minBytes: number, maxBytes: number) {
    super();
    this.#minBytes = Math.max(1, minBytes);
    this.#maxBytes = maxBytes;
    this.#timer = setTimeout(() => this.#check(), window);
    this.#timer.unref();
  }

  #check(): void {
    const originBusy = this.writableLength > 0 || this.readableLength >= this.readableHighWaterMark;
    if (!originBusy && this.#received < this.#minBytes) {
      this.expired = true;
      this.destroy(bodyTimeout());
      return;
    }
    this.#received = 0;
    this.#timer.refresh();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#received += chunk.length;
    this.#total += chunk.length;
    if (this.#total > this.#maxBytes) {
      this.overLimit = true;
      callback(new EdgeError('EDGE_ERR_CLIENT_BODY_TOO_LARGE', 'request body too large'));
      return;
    }
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
