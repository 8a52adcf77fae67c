/**
 * WebSocket handshakes (RFC 6455 §4.1, RFC 9110 §7.8) on HTTP/1.1 listeners. node:http hands
 * a request with `Connection: upgrade` to 'upgrade' listeners only when `shouldUpgradeCallback`
 * says so; everything else (h2c, an Upgrade on a POST, HTTP/1.0) stays an ordinary request, as
 * before. The one that is taken gets a ServerResponse on its socket, so that a refusal or a
 * non-101 answer is written like any other response; once that response is written the
 * connection ends (the parser is gone: no further request can be read from it).
 */
import { type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { connectionTokens } from './headers.ts';

/** Handles a WebSocket handshake: `head` holds the bytes the client sent after the request head. */
export type UpgradeHandler = (req: IncomingMessage, answer: ServerResponse, head: Buffer) => void;

/**
 * Whether a request is a WebSocket handshake the node may tunnel: an HTTP/1.1 GET whose
 * Connection lists `upgrade` and whose Upgrade names `websocket` (RFC 6455 §4.2.1).
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  if (req.method !== 'GET' || req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) return false;
  if (!connectionTokens(req.headers.connection)?.has('upgrade')) return false;
  const protocols = req.headers.upgrade?.split(',') ?? [];
  return protocols.some((protocol) => protocol.trim().toLowerCase().split('/')[0] === 'websocket');
}

/**
 * Sends WebSocket handshakes of `server` to `handler` (HTTP/1.1 servers, and the HTTP/1.1 side
 * of a TLS server that also speaks HTTP/2). `lingerMs`: how long a client has to read an answer
 * that ends its connection before the connection is destroyed. Returns what destroys the
 * connections of handshakes still waiting behind pipelined answers (a drain's end).
 */
export function acceptUpgrades(server: Server, handler: UpgradeHandler, lingerMs: number): () => void {
  (server as Server & { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback =
    isWebSocketUpgrade;
  // Handshakes waiting behind answers the client pipelined before them: node:http tracks their
  // sockets no more (closeAllConnections misses them), the handler not yet (tunnel.ts).
  const waiting = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', ignore);
    waiting.add(socket);
    socket.once('close', () => waiting.delete(socket));
    const drain = forwardDrain(socket);
    afterPipelined(socket, () => {
      socket.off('drain', drain);
      waiting.delete(socket);
      // A client that ends its side before the tunnel opens has gone (as nginx reads it): its
      // handshake is dropped, the origin's included (the response's 'close'). Answers to what it
      // pipelined before the handshake were still written whole: only now is it dropped.
      if (socket.readableEnded) return void socket.end();
      const gone = () => socket.destroy();
      socket.once('end', gone);
      (socket as Socket & { [kGone]?: () => void })[kGone] = gone;
      const answer = new ServerResponse(req);
      answer.shouldKeepAlive = false;
      answer.assignSocket(socket);
      // An answer other than the tunnel: the connection ends with it (half-open sockets wait for
      // the client's FIN, which a client that never closes would never send).
      answer.once('finish', () => {
        socket.end();
        const linger = setTimeout(() => socket.destroy(), lingerMs);
        linger.unref();
        socket.once('close', () => clearTimeout(linger));
      });
      handler(req, answer, head);
    });
  });
  // The drain is over: those still waiting are dropped with the rest of the connections.
  return () => {
    for (const socket of waiting) socket.destroy();
  };
}

/**
 * Runs `then` once the answers to requests the client pipelined before its handshake are written
 * whole (RFC 9112 §9.3.2: responses in the order of the requests): node:http hands the socket
 * over as soon as it has read the handshake, with those answers still on their way. A
 * connection that ended with them (`Connection: close`, the client gone) drops the handshake.
 */
function afterPipelined(socket: Socket, then: () => void): void {
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current == null) {
    if (socket.destroyed || socket.writableEnded) return void socket.destroy();
    return then();
  }
  const next = (): void => {
    current.off('finish', next);
    current.off('close', next);
    // node:http's own 'finish' listener ran first: the next queued answer (if any) has the socket.
    afterPipelined(socket, then);
  };
  current.once('finish', next);
  current.once('close', next);
}

/**
 * node:http takes its own 'drain' listener off a socket whose handshake it has read, yet the
 * answers pipelined before the handshake are still written on it: one that filled the socket's
 * buffer waited for a 'drain' never passed on, and neither it nor the handshake went further.
 * Passes the socket's 'drain' on to the answer waiting for it, as node:http does.
 */
function forwardDrain(socket: Socket): () => void {
  const drain = (): void => {
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (current?.writableNeedDrain) current.emit('drain');
  };
  socket.on('drain', drain);
  return drain;
}

/** Writes a 101 head on the socket of `answer` and takes the socket from it: the tunnel begins. */
export function switchProtocols(answer: ServerResponse, headers: readonly string[]): Socket {
  const socket = answer.socket as Socket & { [kGone]?: () => void };
  answer.detachSocket(socket);
  // From here a FIN is the client's half-close, passed on to the origin (splice.ts).
  if (socket[kGone]) socket.off('end', socket[kGone]);
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  socket.write(`${head}\r\n`, 'latin1');
  return socket;
}

const kGone = Symbol('strata.upgrade-gone');

function ignore(): void {}
