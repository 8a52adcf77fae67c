/**
 * TLS client listeners: HTTPS with HTTP/2 and HTTP/1.1 on one port (ALPN `h2`, `http/1.1`),
 * or HTTP/1.1 only. Both kinds of request reach the one handler: HTTP/1.1 requests through
 * the same per-connection guard as the plain listener, HTTP/2 streams straight from
 * node:http2's 'stream' event as an `H2Request` and `H2Response` (h2-exchange.ts: what the
 * pipeline reads of a request and a response, on the raw stream; node:http2's compatibility
 * objects are never made). HTTP/2 has its own flow control per stream, so it needs no
 * pipelining guard; it has explicit limits instead (see `Http2Limits`) and the rapid-reset defence.
 */
import type { IncomingMessage } from 'node:http';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { refusalDetail } from '../observability/cache-status.ts';
import { type ConnectionLimits, guardConnections, limitSends } from './connection-guard.ts';
import {
  type ConnectionCaps,
  type ConnectionCounter,
  capConnections,
  limitRequests,
} from './connection-limit.ts';
import { H2Request, H2Response } from './h2-exchange.ts';
import {
  answerParserRefusals,
  listenOn,
  type ParserRefusalListener,
  type RequestHandler,
  refuseConnect,
  TIMEOUT_CHECK_INTERVAL,
} from './listener.ts';
import { expectsOnlyContinue } from './request-target.ts';
import {
  type CertificatePair,
  CertificateStore,
  type ReloadProblem,
  type ReloadReport,
  type SniPair,
  watchFiles,
} from './tls.ts';
import { acceptUpgrades, type UpgradeHandler } from './upgrade.ts';

export interface Http2Limits {
  maxConcurrentStreams: number;
  maxHeaderListSize: number;
  initialWindowSize: number;
  /** MiB, as node:http2 counts it. */
  maxSessionMemory: number;
  /** Streams a client may cancel per `resetWindow` ms before its connection is closed. */
  resetLimit: number;
  resetWindow: number;
}

export interface SecureListenerOptions {
  host: string;
  port: number;
  maxHeaderSize: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connections: ConnectionLimits;
  /** Caps on open connections, in all and per client address (0: none), as on the plain listener. */
  caps?: ConnectionCaps;
  /**
   * Requests one connection may carry (0: no limit): on HTTP/1.1 the last is answered with
   * Connection: close; on HTTP/2 the session gets GOAWAY after its last stream and ends once
   * the streams in flight are answered.
   */
  /** Told of each HTTP/1.1 request the parser refused (listener.ts). */
  onClientError?: ParserRefusalListener;
  /** The cache's name in a parser refusal's Cache-Status (listener.ts). */
  cacheName?: string;
  /** HTTP/1.1 WebSocket handshakes (upgrade.ts); absent: Upgrade is ignored. HTTP/2 has none (RFC 8441 is not offered). */
  onUpgrade?: UpgradeHandler | undefined;
  maxRequestsPerConnection?: number;
  certificate: CertificatePair;
  sni: readonly SniPair[];
  /** Offer HTTP/2 (ALPN h2) beside HTTP/1.1. */
  http2: boolean;
  limits: Http2Limits;
  /** Watch the certificate files and reload on change (default true). */
  watch?: boolean;
  /** Told the outcome of every reload (logging). */
  onReload?: (report: ReloadReport, why: string) => void;
  /** Told when an SNI pair fails to load on first use (its names get the default certificate). */
  onCertificateFailure?: (servername: string, problem: ReloadProblem) => void;
  /** Told of each pair loaded (at start, first use, reload) that is expired or not valid yet. */
  onCertificateOutOfDate?: (problem: ReloadProblem) => void;
  /** Told when a connection is closed for cancelling too many streams. */
  onRapidReset?: (address: string | undefined) => void;
}

export interface SecureListener {
  readonly server: Http2SecureServer | HttpsServer;
  readonly address: AddressInfo;
  readonly certificates: CertificateStore;
  /** Open and refused connections (counted when caps are set). */
  readonly connections: ConnectionCounter;
  /** Reads the certificates again (file change, SIGHUP); connections stay open. */
  reloadCertificates(why: string): ReloadReport;
  /** Session ticket keys (48 bytes) for every context (shared by the workers of a node). */
  setTicketKeys(keys: Buffer): void;
  /** Open HTTP/2 sessions (tests, metrics). */
  readonly sessions: ReadonlySet<Http2Session>;
  closeAllConnections(): void;
  close(): Promise<void>;
}

export async function startSecureListener(
  options: SecureListenerOptions,
  handler: RequestHandler,
): Promise<SecureListener> {
  const certificates = new CertificateStore(options.certificate, options.sni, options.onCertificateOutOfDate);
  certificates.onFailure = options.onCertificateFailure;
  const maxRequests = options.maxRequestsPerConnection ?? 0;
  const guarded = guardConnections(limitRequests(handler, maxRequests), options.connections);
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  const tlsOptions = {
    ...certificates.defaultOptions,
    SNICallback: certificates.sniCallback,
    // The time a plain listener gives a request head (node:tls's default is two minutes).
    handshakeTimeout: Math.min(options.requestTimeout, 20_000),
  };
  let server: Http2SecureServer | HttpsServer;
  if (options.http2) {
    const limits = options.limits;
    const h2 = createSecureServer({
      ...tlsOptions,
      allowHTTP1: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderListSize,
        initialWindowSize: limits.initialWindowSize,
        enablePush: false,
      },
      maxSessionMemory: limits.maxSessionMemory,
      maxHeaderListPairs: 256,
    });
    // HTTP/1.1 over the same port: the limits of the plain listener.
    const h1 = h2 as unknown as Record<string, unknown>;
    h1.maxHeaderSize = options.maxHeaderSize;
    h1.requestTimeout = options.requestTimeout;
    h1.headersTimeout = Math.min(options.requestTimeout, 20_000);
    h1.connectionsCheckingInterval = TIMEOUT_CHECK_INTERVAL;
    h1.keepAliveTimeout = options.keepAliveTimeout;
    h1.requireHostHeader = false;
    h1.joinDuplicateHeaders = false;
    // HTTP/1.1 requests (ALPN http/1.1) come as 'request'. Listening for it makes node:http2
    // also answer every HTTP/2 stream through its compatibility layer (a 'stream' listener it
    // adds then): that one is removed, HTTP/2 streams are answered below.
    h2.on('request', guarded as never);
    h2.on('checkContinue', guarded as never);
    h2.on('checkExpectation', guarded as never);
    h2.on('connect', ((req: IncomingMessage, socket: Socket) =>
      refuseConnect(req, socket, options.cacheName)) as never);
    h2.removeAllListeners('stream');
    const sendTimeout = options.connections.sendTimeout;
    const idleTimeout = options.keepAliveTimeout + options.requestTimeout;
    h2.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
        // A stream error (a reset by the client, a destroy with an error) is the stream's end,
        // seen by the pipeline as 'close'; unheard, it would end the process.
        stream.on('error', ignore);
        if (maxRequests > 0) countStream(stream, maxRequests);
        const res = new H2Response(stream);
        // RFC 9110 §10.1.1: 100-continue is sent by the pipeline once it accepts the request;
        // any other expectation is refused, as node:http does on HTTP/1.1.
        const expect = headers.expect;
        if (expect !== undefined && !expectsOnlyContinue(String(expect))) {
          res
            .writeHead(417, {
              'content-length': '0',
              ...(options.cacheName === undefined
                ? {}
                : {
                    'cache-status': `${options.cacheName}; detail=${refusalDetail('EDGE_ERR_CLIENT_EXPECTATION')}`,
                  }),
            })
            .end();
          return;
        }
        handler(new H2Request(stream, headers, raw) as never, res as never);
        // Answered at once with a large body (a hot entry): it waits in the stream, watched for progress.
        if (stream.writableEnded && sendTimeout > 0 && stream.writableLength > options.connections.sendBuffer)
          watchStream(stream, sendTimeout);
      },
    );
    h2.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => {
        sessions.delete(session);
        clearIdleTimer(session);
      });
      guardResets(session, limits, options.onRapidReset);
      // An idle connection is closed (GOAWAY) like an idle HTTP/1.1 keep-alive one. Per session,
      // not per stream: a server-wide timeout would arm a timer for every stream (a hit's cost).
      // GOAWAY waits for the streams in flight: one the client never takes (a small answer, its
      // window left at 0) would hold the connection for ever, so a session still without
      // progress an idle period after its GOAWAY is destroyed.
      const idle = () => {
        if (session.closed) return session.destroy();
        session.close();
        session.setTimeout(idleTimeout, idle);
      };
      session.setTimeout(idleTimeout, idle);
      if (session.socket) limitSends(session.socket, options.connections, handler);
    });
    server = h2;
  } else {
    const https = createHttpsServer(
      {
        ...tlsOptions,
        ALPNProtocols: ['http/1.1'],
        maxHeaderSize: options.maxHeaderSize,
        requestTimeout: options.requestTimeout,
        headersTimeout: Math.min(options.requestTimeout, 20_000),
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL,
        keepAliveTimeout: options.keepAliveTimeout,
        requireHostHeader: false,
        joinDuplicateHeaders: false,
      },
      guarded,
    );
    https.on('checkContinue', guarded);
    https.on('checkExpectation', guarded);
    https.on('connect', (req: IncomingMessage, socket: Socket) =>
      refuseConnect(req, socket, options.cacheName),
    );
    server = https;
  }
  // On the TCP connection, before the handshake: a refused client costs no TLS work.
  const connections = capConnections(server, options.caps ?? { max: 0, perClient: 0 });
  // HTTP/1.1 requests the parser refuses are answered and logged as on the plain listener.
  if (options.onClientError)
    answerParserRefusals(
      server as unknown as import('node:http').Server,
      options.onClientError,
      options.cacheName,
    );
  if (options.onUpgrade)
    acceptUpgrades(
      server as unknown as import('node:http').Server,
      options.onUpgrade,
      options.keepAliveTimeout || 5000,
    );
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A client that fails the handshake (or speaks no TLS) is dropped quietly.
  server.on('tlsClientError', () => {});
  certificates.onDefault = (next) => server.setSecureContext(next);
  const reloadCertificates = (why: string): ReloadReport => {
    const report = certificates.reload();
    // setSecureContext gives the server a context of its own: the ticket keys go on it again.
    const keys = certificates.ticketKeys;
    if (keys) server.setTicketKeys(keys);
    options.onReload?.(report, why);
    return report;
  };
  const unwatch =
    options.watch === false
      ? () => {}
      : watchFiles(certificates.files(), () => reloadCertificates('file changed'));
  await listenOn(server, options.host, options.port);
  return {
    server,
    address: server.address() as AddressInfo,
    certificates,
    connections,
    sessions,
    reloadCertificates,
    setTicketKeys(keys) {
      server.setTicketKeys(keys);
      certificates.setTicketKeys(keys);
    },
    closeAllConnections() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
    close() {
      unwatch();
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, 10_000);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        // HTTP/2: GOAWAY, streams in flight finish; HTTP/1.1: idle keep-alive connections close.
        for (const session of sessions) session.close();
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
    },
  };
}

let idleTimerKey: symbol | undefined;

/**
 * node:http2 leaves a closed session's idle timer armed (session.setTimeout is a no-op once the
 * session is destroyed): the timer would hold the session and all it references until it fires,
 * keepAliveTimeout + requestTimeout later, for every connection that ever closed (measured: one
 * retained session per connection in a heap snapshot). The timer is cleared here.
 */
function clearIdleTimer(session: Http2Session): void {
  idleTimerKey ??= Object.getOwnPropertySymbols(session).find((key) => key.description === 'timeout');
  if (idleTimerKey === undefined) return;
  const timer = (session as unknown as Record<symbol, NodeJS.Timeout | undefined>)[idleTimerKey];
  if (timer !== undefined) clearTimeout(timer);
}

const streamCounts = new WeakMap<Http2Session, number>();

/**
 * Counts an HTTP/2 request against its session's `maxRequestsPerConnection`: the last one
 * allowed sends GOAWAY (no new streams; those in flight finish, then the session ends).
 */
function countStream(stream: ServerHttp2Stream, max: number): void {
  const session = stream.session;
  if (session === undefined) return;
  const count = (streamCounts.get(session) ?? 0) + 1;
  streamCounts.set(session, count);
  if (count >= max && !session.closed) session.close();
}

/**
 * The rapid-reset defence (CVE-2023-44487): a client that opens streams and cancels them
 * at once makes the node start work it never finishes. Streams the client cancels are
 * counted per connection over a window; past the limit the connection is closed with
 * GOAWAY ENHANCE_YOUR_CALM.
 */
function guardResets(
  session: Http2Session,
  limits: Http2Limits,
  onRapidReset: ((address: string | undefined) => void) | undefined,
): void {
  let count = 0;
  let windowStart = performance.now();
  const onStreamClose = function (this: ServerHttp2Stream) {
    if (this.rstCode !== constants.NGHTTP2_CANCEL) return;
    const now = performance.now();
    if (now - windowStart > limits.resetWindow) {
      windowStart = now;
      count = 0;
    }
    if (++count > limits.resetLimit && !session.closed && !session.destroyed) {
      onRapidReset?.(session.socket?.remoteAddress);
      // GOAWAY first, then a close that flushes it: destroy(error, code) alone could end the
      // socket before the frame was written, so the client never learned why. A client that
      // keeps the connection open anyway is cut off after a second.
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.close();
      setTimeout(() => session.destroy(), 1000).unref();
    }
  };
  // once(), though 'close' comes once: the listener holds the session, and a stream still
  // referenced after its close (a request's context waiting on its origin) must not hold it.
  session.on('stream', (stream: ServerHttp2Stream) => {
    stream.once('close', onStreamClose);
  });
}

function ignore(): void {}

/** Resets a stream whose queued response makes no progress within `timeout` (the client takes nothing). */
function watchStream(stream: ServerHttp2Stream, timeout: number): void {
  let pending = stream.writableLength;
  const timer = setInterval(() => {
    const now = stream.writableLength;
    if (stream.destroyed || now === 0) clearInterval(timer);
    else if (now >= pending) {
      clearInterval(timer);
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } else pending = now;
  }, timeout);
  timer.unref();
  stream.once('close', () => clearInterval(timer));
}
