/**
 * Client listeners: node:http servers with strict limits. They hand every request to
 * one handler and know nothing of caching.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { ErrorCode } from '../errors.ts';
import { refusalDetail } from '../observability/cache-status.ts';
import { type ConnectionLimits, endWithin, guardConnections } from './connection-guard.ts';
import {
  type ConnectionCaps,
  type ConnectionCounter,
  capConnections,
  limitRequests,
} from './connection-limit.ts';
import { refuseBody } from './request-body.ts';
import { ALLOWED_METHODS } from './request-target.ts';
import { acceptUpgrades, type UpgradeHandler } from './upgrade.ts';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ListenerOptions {
  host: string;
  port: number;
  maxHeaderSize: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  /**
   * Per-connection limits (pipelining depth, queued requests, bytes waiting for the client).
   * Client listeners set them; with them, 100-continue is left to the handler to send once it
   * accepts the request, and CONNECT is answered 405.
   */
  connections?: ConnectionLimits;
  /** Caps on open connections, in all and per client address (0: none). */
  caps?: ConnectionCaps;
  /** Requests one connection may carry (0: no limit); the last is answered with Connection: close. */
  maxRequestsPerConnection?: number;
  /**
   * Told of every request node:http's parser refused before any handler saw it (malformed,
   * headers over maxHeaderSize, a head too slow), with the status answered (undefined when the
   * connection was already gone): for the access log and metrics.
   */
  onClientError?: ParserRefusalListener;
  /** The cache's name in Cache-Status (proxy.via): a parser refusal carries a member saying why. */
  cacheName?: string;
  /** WebSocket handshakes (upgrade.ts); absent: Upgrade is ignored, the request handled as any other. */
  onUpgrade?: UpgradeHandler | undefined;
}

export type ParserRefusalListener = (
  error: NodeJS.ErrnoException,
  socket: Socket,
  status: number | undefined,
) => void;

/**
 * How often node:http checks its connections against the head and request timeouts. Its
 * default (30 s) let a head that stalls (slowloris) hold its connection up to 30 s past the
 * head timeout; the check walks the open connections, a small cost once a second.
 */
export const TIMEOUT_CHECK_INTERVAL = 1000;

/**
 * What node:http answers a request its parser refuses (its own defaults, kept), except a head
 * over the size limit while its request line is still being read: the target is what is too
 * long, and RFC 9112 §3 answers that 414, not 431.
 */
function refusalStatus(error: NodeJS.ErrnoException): number {
  const code = error.code;
  if (code === 'HPE_HEADER_OVERFLOW') return inRequestLine(error) ? 414 : 431;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/** A method token, a space and a target, perhaps its version: a request line not yet ended. */
const OPEN_REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]*(?: HTTP\/\d\.\d\r?)?$/;

/**
 * Whether the parser gave up inside a request line: the line it was reading when it stopped
 * (from the last line feed of the bytes it was given) is a method and a target. A header line
 * has a colon before any space. A target split over several reads shows no method in the last
 * one: it is answered 431 as before.
 */
function inRequestLine(error: NodeJS.ErrnoException): boolean {
  const packet = (error as { rawPacket?: unknown }).rawPacket;
  if (!Buffer.isBuffer(packet)) return false;
  const parsed = (error as { bytesParsed?: unknown }).bytesParsed;
  const end = typeof parsed === 'number' && parsed > 0 ? Math.min(parsed, packet.length) : packet.length;
  const start = packet.lastIndexOf(0x0a, end - 1) + 1;
  return OPEN_REQUEST_LINE.test(packet.toString('latin1', start, end));
}

/** The code a parser refusal is answered and logged with, by the status answered. */
const PARSER_REFUSALS: Readonly<Record<number, ErrorCode>> = {
  408: 'EDGE_ERR_CLIENT_REQUEST_TIMEOUT',
  413: 'EDGE_ERR_CLIENT_BODY_TOO_LARGE',
  414: 'EDGE_ERR_CLIENT_URL_TOO_LONG',
  431: 'EDGE_ERR_CLIENT_HEADERS_TOO_LARGE',
};

export function parserRefusalCode(status: number): ErrorCode {
  return PARSER_REFUSALS[status] ?? 'EDGE_ERR_CLIENT_BAD_REQUEST';
}

/**
 * Answers a request the parser refused as node:http would (status line, Connection: close, the
 * connection ended) and reports it, so the access log has a line for it too.
 */
export function answerParserRefusals(
  server: Server,
  listener: ParserRefusalListener,
  cacheName?: string,
): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // A TLS handshake that failed or timed out: node:http2's server passes it here when
    // 'clientError' is heard, and leaves the socket open. No HTTP was spoken: nothing to answer
    // (text written before the handshake would never leave) nor log; dropped (docs/tls.md).
    if (error.code?.startsWith('ERR_TLS_') || error.code?.startsWith('ERR_SSL_')) {
      socket.destroy();
      return;
    }
    // Bytes after a request that said Connection: close (or HTTP/1.0 without keep-alive): RFC
    // 9112 §9.6, the server "MUST NOT process any further requests received on that
    // connection". Not a refusal: the request before is answered, then the connection closes.
    if (error.code === 'HPE_CLOSED_CONNECTION') {
      socket.pause();
      return;
    }
    const refusing = socket as Socket & { [kRefusing]?: true };
    if (refusing[kRefusing]) return; // already being answered (the parser reports once per read)
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      listener(error, socket, undefined);
      return;
    }
    refusing[kRefusing] = true;
    socket.pause();
    // RFC 9112 §9.3.2: responses go in the order of the requests. A request whose head was
    // refused is answered after those the parser accepted before it (pipelined, still with the
    // origin or being written); one whose body failed (cut short, malformed chunks) is answered
    // now: the response in progress is its own, and it cannot complete.
    const failed = failedBody(socket);
    const inBody = failed !== undefined;
    const sent = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    const answer = () => {
      if (!socket.writable || (inBody && sent)) {
        socket.destroy();
        listener(error, socket, undefined);
        return;
      }
      // Its framing refused while the client is still there (a bad chunk size, a chunk longer
      // than it said): its body fails now (an origin request streaming it is aborted), and this
      // refusal is its answer and its one access-log line: the handler's own is not written. A
      // client that closed its side mid-body (the parser's EOF) left: its request fails as the
      // connection closes, and the handler's line says so (499).
      if (failed !== undefined && error.code !== 'HPE_INVALID_EOF_STATE') {
        (failed as Refused)[kRefusedByParser] = true;
        refuseBody(failed, error);
      }
      const status = refusalStatus(error);
      const cacheStatus =
        cacheName === undefined
          ? ''
          : `Cache-Status: ${cacheName}; detail=${refusalDetail(parserRefusalCode(status))}\r\n`;
      // The client has the keep-alive timeout to read the answer.
      endWithin(
        socket,
        server.keepAliveTimeout || 5000,
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${cacheStatus}Connection: close\r\n\r\n`,
      );
      listener(error, socket, status);
    };
    if (inBody) answer();
    else afterResponses(socket, answer);
  });
}

const kRefusing = Symbol('strata.refusing');
const kRefusedByParser = Symbol('strata.refused-by-parser');
type Refused = IncomingMessage & { [kRefusedByParser]?: true };

/** The request in whose body the parser failed (its head accepted, its body not ended), if any. */
function failedBody(socket: Socket): IncomingMessage | undefined {
  const incoming = (socket as { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  return incoming != null && incoming.complete !== true ? incoming : undefined;
}

/**
 * Whether `req` was answered and logged as a parser refusal (its body's framing refused): the
 * handler working on it writes no access-log line of its own.
 */
export function refusedByParser(req: IncomingMessage): boolean {
  return (req as Refused)[kRefusedByParser] === true;
}

type Outgoing = { writableFinished?: boolean; once(event: string, listener: () => void): unknown };

/**
 * Calls `then` once no response of the connection is left to write: node:http attaches the
 * pipelined responses to the socket one after the other (`_httpMessage`), each once the one
 * before has finished. A response cut short closes the connection (`then` finds it closed).
 */
function afterResponses(socket: Socket, then: () => void): void {
  const current = (socket as { _httpMessage?: Outgoing | null })._httpMessage;
  if (current == null || current.writableFinished === true || socket.destroyed) {
    then();
    return;
  }
  let called = false;
  const next = () => {
    if (called) return;
    called = true;
    setImmediate(afterResponses, socket, then);
  };
  current.once('finish', next);
  current.once('close', next);
}

export interface Listener {
  readonly server: Server;
  /** Open and refused connections (counted when caps are set). */
  readonly connections: ConnectionCounter;
  readonly address: AddressInfo;
  closeAllConnections(): void;
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions, handler: RequestHandler): Promise<Listener> {
  const limited = limitRequests(handler, options.maxRequestsPerConnection ?? 0);
  const guarded = options.connections ? guardConnections(limited, options.connections) : limited;
  const server = createServer(
    {
      maxHeaderSize: options.maxHeaderSize,
      requestTimeout: options.requestTimeout,
      headersTimeout: Math.min(options.requestTimeout, 20_000),
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL,
      keepAliveTimeout: options.keepAliveTimeout,
      // Host is checked by the handler, so that a request without it ends the connection
      // like any other refusal (node:http would answer 400 and go on with what follows).
      requireHostHeader: !options.connections,
      joinDuplicateHeaders: false,
    },
    guarded,
  );
  const connections = capConnections(server, options.caps ?? { max: 0, perClient: 0 });
  if (options.onClientError) answerParserRefusals(server, options.onClientError, options.cacheName);
  const dropWaiting = options.onUpgrade
    ? acceptUpgrades(server, options.onUpgrade, options.keepAliveTimeout || 5000)
    : undefined;
  if (options.connections) {
    // RFC 9110 §10.1.1: 100 Continue is sent by the handler once it accepts the request; any
    // other expectation is answered 417 by the handler too (node:http would answer it without
    // a Cache-Status, a request id or an access-log line).
    server.on('checkContinue', guarded);
    server.on('checkExpectation', guarded);
    server.on('connect', (req: IncomingMessage, socket: Socket) =>
      refuseConnect(req, socket, options.cacheName),
    );
  }
  await listenOn(server, options.host, options.port);
  return {
    server,
    connections,
    address: server.address() as AddressInfo,
    closeAllConnections: () => {
      server.closeAllConnections();
      dropWaiting?.();
    },
    close: () => closeGracefully(server),
  };
}

/** Binds `server` to host:port; rejects with the bind error (address in use, no permission). */
export function listenOn(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** CONNECT never reaches the handler (node:http hands over the socket): the node is no forward proxy. */
export function refuseConnect(_req: IncomingMessage, socket: Socket, cacheName?: string): void {
  const body = '405 method CONNECT not allowed\n';
  socket.end(
    'HTTP/1.1 405 Method Not Allowed\r\n' +
      `Allow: ${ALLOWED_METHODS}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${body.length}\r\n` +
      'Cache-Control: no-store\r\n' +
      (cacheName === undefined
        ? ''
        : `Cache-Status: ${cacheName}; detail=${refusalDetail('EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED')}\r\n`) +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections. */
export function closeGracefully(server: Server, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
