/**
 * One HTTP/2 request and its response on node:http2's raw stream (the server's 'stream'
 * event), shaped as the part of node:http's request and response the pipeline reads. They
 * replace node:http2's compatibility objects (Http2ServerRequest, a Readable; and
 * Http2ServerResponse, a Stream with its own header object and six listeners on the stream),
 * which cost an HTTP/2 hit more CPU than everything Strata does for it (docs/performance.md).
 * Here nothing is constructed per request but these two small objects: events, the request
 * body and backpressure are the stream's own, and the response head goes to `stream.respond`
 * as a flat list.
 *
 * What they carry. Request: method, url, headers (pseudo-header fields included, as
 * node:http2 gives them), rawHeaders, httpVersionMajor/Minor (2.0), socket (the session's),
 * `stream`, complete, destroyed, and on/once/off/pipe/unpipe/resume for the body. Response: writeHead with a
 * flat [name, value, …] list or an object, write (with 'drain'), end, destroy, headersSent,
 * writableEnded, writableFinished, destroyed, closed, statusCode, socket, on/once/off/
 * removeListener for 'close', 'drain' and 'finish', writeContinue and writeEarlyHints.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constants, type Http2Session, type ServerHttp2Stream, sensitiveHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';

/**
 * RFC 9113 §8.2.2: fields that must not appear in an HTTP/2 message (node:http2 throws on
 * them). The pipeline never adds them on HTTP/2; one that slipped through is dropped here.
 */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Fields whose value is new in (nearly) every response: sent as HPACK literals "never
 * indexed" (RFC 7541 §6.2.3). Indexed, each response would insert its X-Request-Id and
 * Cache-Status (whose ttl= changes every second) into the connection's dynamic table and evict
 * an older entry, to no use: measured with node:http2 alone, that churn cost about 10 µs of
 * CPU per response, as much as the rest of the head (docs/performance.md). Age is never
 * indexed by nghttp2 already.
 */
const NEVER_INDEXED: readonly string[] = ['x-request-id', 'cache-status'];

// biome-ignore lint/suspicious/noExplicitAny: listeners of any event, as EventEmitter types them
type Listener = (...args: any[]) => void;

/** What both sides share: the stream, its state, and its events (the stream's own). */
class OnStream {
  readonly stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  on(event: string, listener: Listener): this {
    this.stream.on(event, listener);
    return this;
  }

  once(event: string, listener: Listener): this {
    this.stream.once(event, listener);
    return this;
  }

  off(event: string, listener: Listener): this {
    this.stream.off(event, listener);
    return this;
  }

  removeListener(event: string, listener: Listener): this {
    return this.off(event, listener);
  }
}

export class H2Request extends OnStream {
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  /**
   * The client did not end the stream with its headers: a body follows, whether or not it sent
   * Content-Length (request-body.ts hasRequestBody).
   */
  readonly bodyFollows: boolean;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) {
    super(stream);
    this.bodyFollows = !stream.endAfterHeaders;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.method = headers[':method'] as string | undefined;
    this.url = headers[':path'] as string | undefined;
  }

  /** The connection's socket (node:http2's proxy of it: reads its address and state), while the stream lives. */
  get socket(): Socket {
    return socketOf(this.stream) as Socket;
  }

  /** The whole body arrived (the client ended its side of the stream). */
  get complete(): boolean {
    return this.stream.readableEnded;
  }

  pipe<T extends Writable>(destination: T): T {
    return this.stream.pipe(destination);
  }

  /** The body no longer goes where it was piped (discardRest: the rest is read and dropped). */
  unpipe(): void {
    this.stream.unpipe();
  }

  resume(): void {
    this.stream.resume();
  }
}

/** Bytes of response bodies written whole and not yet done, per connection (endWithin). */
const wholeBytes = new WeakMap<Http2Session, number>();

export class H2Response extends OnStream {
  statusCode = 200;
  /** The head given to writeHead, sent with the first write or end (one frame when there is no body). */
  #head: Array<string | number> | undefined;

  get socket(): Socket | undefined {
    return socketOf(this.stream);
  }

  get headersSent(): boolean {
    return this.#head !== undefined || this.stream.headersSent;
  }

  get writableEnded(): boolean {
    return this.stream.writableEnded;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get closed(): boolean {
    return this.stream.closed;
  }

  /** The head, from a flat [name, value, …] list or an object; names in any case. */
  writeHead(status: number, headers?: readonly string[] | Record<string, string | string[] | number>): this {
    this.statusCode = status;
    const head: Array<string | number> = [':status', status];
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) push(head, headers[i]!, headers[i + 1]!);
    } else if (headers !== undefined) {
      for (const name in headers) {
        const value = (headers as Record<string, string | string[] | number>)[name]!;
        if (Array.isArray(value)) for (const one of value) push(head, name, one);
        else push(head, name, value);
      }
    }
    (head as unknown as Record<symbol, readonly string[]>)[sensitiveHeaders] = NEVER_INDEXED;
    this.#head = head;
    return this;
  }

  write(chunk: Buffer | string, callback?: (error?: Error | null) => void): boolean {
    this.#send(false);
    return this.stream.write(chunk, callback);
  }

  end(chunk?: Buffer | string): this {
    const stream = this.stream;
    const empty = chunk === undefined || chunk.length === 0;
    this.#send(empty);
    // HEAD, 204 and 304 end with their head (node:http2 ends the stream in respond()).
    if (stream.writableEnded || stream.destroyed) return this;
    if (empty) stream.end();
    else stream.end(chunk);
    return this;
  }

  /**
   * Ends the response with `body` in one write, if the bodies written whole on this stream's
   * connection and not yet done, this one added, stay within `budget` bytes; otherwise writes
   * nothing and returns false (the caller sends it in pieces). node:http2 counts what a
   * connection's streams have queued against its session's memory bound and refuses every new
   * stream while past it: whole writes of large bodies at once must not get there.
   */
  endWithin(body: Buffer, budget: number): boolean {
    const stream = this.stream;
    const session = stream.session;
    // A stream already gone would never say 'close' again: nothing is counted for it.
    if (session === undefined || stream.destroyed || stream.closed) return false;
    const held = wholeBytes.get(session) ?? 0;
    if (held + body.length > budget) return false;
    wholeBytes.set(session, held + body.length);
    stream.once('close', () =>
      wholeBytes.set(session, (wholeBytes.get(session) ?? body.length) - body.length),
    );
    this.end(body);
    return true;
  }

  destroy(error?: Error): void {
    if (!this.stream.destroyed) this.stream.destroy(error);
  }

  writeContinue(): void {
    const stream = this.stream;
    if (!stream.headersSent && !stream.closed && !stream.destroyed)
      stream.additionalHeaders({ ':status': constants.HTTP_STATUS_CONTINUE });
  }

  /** A 103 with the given fields; `link` as one value or a list of members. */
  writeEarlyHints(hints: Record<string, string | string[]>): void {
    const stream = this.stream;
    if (stream.headersSent || stream.closed || stream.destroyed) return;
    const fields: Record<string, string | number> = { ':status': 103 };
    for (const name in hints) {
      const value = hints[name]!;
      fields[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    stream.additionalHeaders(fields);
  }

  /** Sends the pending head; `last`: nothing follows it (END_STREAM on the HEADERS frame). */
  #send(last: boolean): void {
    const stream = this.stream;
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    const head = this.#head ?? [':status', this.statusCode];
    this.#head = undefined;
    stream.respond(head as never, last ? ENDS : CONTINUES);
  }
}

const ENDS = { endStream: true } as const;
const CONTINUES = { endStream: false } as const;

/** Undefined once the stream is gone: node:http2's proxy throws when its session has no socket left. */
function socketOf(stream: ServerHttp2Stream): Socket | undefined {
  const session = stream.session;
  return stream.destroyed || session === undefined || session.destroyed
    ? undefined
    : (session.socket as Socket);
}

/**
 * Field names as HTTP/2 sends them (lower case), '' for a connection-specific one. Stored header
 * lists keep the origin's spelling (HTTP/1.1 answers keep it); lowering every name of every
 * response allocated a string per field, here and again inside node:http2. Bounded: names come
 * from origins.
 */
const LOWER = new Map<string, string>();
const LOWER_MAX = 2048;

function lower(name: string): string {
  let found = LOWER.get(name);
  if (found !== undefined) return found;
  found = name.toLowerCase();
  if (CONNECTION_SPECIFIC.has(found)) found = '';
  if (LOWER.size < LOWER_MAX) LOWER.set(name, found);
  return found;
}

function push(head: Array<string | number>, name: string, value: string | number): void {
  const field = lower(name);
  if (field !== '') head.push(field, typeof value === 'string' ? value : String(value));
}
