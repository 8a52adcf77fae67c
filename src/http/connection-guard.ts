/**
 * Per-connection limits of an HTTP/1.1 client connection. node:http parses every request a
 * client pipelines and emits them all at once, whether or not the client reads its answers;
 * this guard stands between the parser and the handler:
 *
 * - at most `depth` requests of one connection are worked on at a time, and the next one is
 *   dispatched only while less than `sendBuffer` bytes wait in the socket for the client, so
 *   a client that never reads can neither fan out to the origin nor pin memory;
 * - only requests with a safe method are worked on together (RFC 9112 §9.3.2: "A server MAY
 *   process a sequence of pipelined requests in parallel if they all have safe methods"): one
 *   with any other method waits until everything before it has been answered, and nothing
 *   after it is dispatched until its own answer has ended, so the origin sees unsafe requests,
 *   and whatever reads their effects, in the order the client sent them;
 * - while requests wait, the socket is not read; past `maxQueued` waiting requests it is closed;
 * - a response streams in pieces of at most SEND_BUFFER bytes, the next only after 'drain'
 *   (`whenDrained`); a client that takes nothing within `sendTimeout` has it cut short;
 * - once a request was refused with `Connection: close`, or answered with a head after which
 *   node:http ends the connection (`Connection: close` of its own: a request that expected
 *   100-continue answered without the 100), nothing more of the connection is dispatched and
 *   it is no longer read.
 *
 * A response answered at once (a fresh hit) costs one counter and no listener.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { discardRest } from './request-body.ts';

export interface ConnectionLimits {
  /** Requests of one connection worked on at the same time. */
  readonly depth: number;
  /** Requests of one connection waiting to be dispatched before it is closed. */
  readonly maxQueued: number;
  /** Bytes waiting in the socket for the client above which no further request is dispatched. */
  readonly sendBuffer: number;
  /** Longest wait for the client to take what waits for it before its response is cut short (0: none). */
  readonly sendTimeout: number;
}

/** Bytes a response may leave waiting for the client before it waits for 'drain' (and the size of the pieces it writes). */
export const SEND_BUFFER = 64 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** RFC 9110 §9.2.1: the safe methods, the only ones worked on in parallel on one connection. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** The response fields node:http keeps on the object (lib/_http_outgoing.js, lib/_http_server.js). */
type NodeResponse = ServerResponse & { _last?: boolean; _expect_continue?: boolean; _sent100?: boolean };

interface ConnectionState {
  inFlight: number;
  /** A request with an unsafe method is in flight: nothing else is dispatched until it ends. */
  alone: boolean;
  queue: Array<[IncomingMessage, ServerResponse]>;
  refused: boolean;
  paused: boolean;
  waitingDrain: boolean;
  /** Watches a response written whole (a hot body) for progress while the client takes it. */
  watch: NodeJS.Timeout | undefined;
  pending: number;
  readonly limits: ConnectionLimits;
  readonly handler: Handler;
}

const kState = Symbol('strata.connection');
type GuardedSocket = Socket & { [kState]?: ConnectionState };

/** Wraps `handler` so that every connection keeps within `limits`. */
export function guardConnections(handler: Handler, limits: ConnectionLimits): Handler {
  return (req, res) => {
    const socket = req.socket as GuardedSocket;
    let state = socket[kState];
    if (state === undefined) {
      state = newState(limits, handler);
      socket[kState] = state;
    }
    if (state.refused) return; // the connection ends after the refusal: nothing more is dispatched
    if (state.queue.length === 0 && mayStart(state, req) && socket.writableLength <= limits.sendBuffer) {
      dispatch(state, req, res);
      return;
    }
    state.queue.push([req, res]);
    if (state.queue.length > limits.maxQueued) {
      socket.destroy();
      return;
    }
    if (!state.paused) {
      state.paused = true;
      socket.pause();
    }
    pump(socket, state);
  };
}

/**
 * An HTTP/2 connection: no pipelining to guard (each stream has its own flow control), but its
 * responses keep the send timeout (`whenDrained`): a stream whose client takes nothing within
 * it is cut short.
 */
export function limitSends(socket: Socket, limits: ConnectionLimits, handler: Handler): void {
  const guarded = socket as GuardedSocket;
  guarded[kState] ??= newState(limits, handler);
}

function newState(limits: ConnectionLimits, handler: Handler): ConnectionState {
  return {
    inFlight: 0,
    alone: false,
    queue: [],
    refused: false,
    paused: false,
    waitingDrain: false,
    watch: undefined,
    pending: 0,
    limits,
    handler,
  };
}

/**
 * A refusal that closes the connection before the request body was received whole (a body over
 * the site's limit, too slow, cut): the client may still be sending it, and many read the answer
 * only once they have sent it all. Closed with those bytes unread, the connection ends in a reset
 * that can discard the answer before the client reads it. Instead, once the answer is written
 * the node ends its side, reads and drops whatever the client still sends (nothing more is
 * dispatched), and closes when the client closes its side or after `linger` ms (a lingering
 * close, RFC 9112 §9.6).
 */
export function lingerAfterAnswer(req: IncomingMessage, linger: number): void {
  const socket = req.socket as (Socket & { destroySoon?: () => void }) | null;
  if (!socket || req.complete || socket.destroyed) return;
  // node:http ends a connection whose last answer is written with destroySoon().
  socket.destroySoon = () => {
    endWithin(socket, linger);
    socket.once('end', () => socket.destroy());
    discardRest(req);
    socket.resume();
  };
}

/**
 * Ends the connection (after `last`, if given) and closes it once the client has closed its side,
 * or after `linger` ms: end() sends FIN and waits for the client's (node:http's sockets are
 * half-open), and a client that never closes would keep the connection for ever. Closing at once
 * could reset the answer before the client read it.
 */
export function endWithin(socket: Socket, linger: number, last?: string): void {
  if (last === undefined) socket.end();
  else socket.end(last);
  const timer = setTimeout(() => socket.destroy(), linger);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * After a refusal that closes the connection: requests already parsed behind this one are
 * dropped, and the socket is not read any more.
 */
export function refuseFurtherRequests(req: IncomingMessage): void {
  const socket = req.socket as GuardedSocket | null;
  if (!socket) return;
  const state = socket[kState];
  if (state !== undefined) stopDispatching(socket, state);
  else socket.pause();
}

function stopDispatching(socket: Socket, state: ConnectionState): void {
  state.refused = true;
  state.queue.length = 0;
  socket.pause();
}

/**
 * Whether `res` answers a request that expects 100-continue before the 100 was sent: node:http
 * then ends the connection after the answer, whatever it says (lib/_http_server.js, writeHead:
 * the client may or may not send the body it announced, so what follows cannot be framed).
 */
export function awaitsContinue(res: ServerResponse): boolean {
  const state = res as NodeResponse;
  return state._expect_continue === true && state._sent100 !== true;
}

/** Whether the head of `res` is written and node:http ends the connection after it. */
function lastOfConnection(res: ServerResponse): boolean {
  return res.headersSent && (res as NodeResponse)._last === true;
}

/**
 * RFC 9112 §9.3.2: a safe request joins those in flight (up to `depth`); any other waits until
 * none is left, and while it is in flight nothing starts.
 */
function mayStart(state: ConnectionState, req: IncomingMessage): boolean {
  if (state.alone) return false;
  if (SAFE_METHODS.has(req.method ?? '')) return state.inFlight < state.limits.depth;
  return state.inFlight === 0;
}

/**
 * Calls `resume` once the client has taken what waits in `res`. A client that takes nothing
 * within the send timeout has the response cut short (the connection closes). A pipelined
 * response still queued behind another waits without a timer: the one in front has its own.
 */
export function whenDrained(res: ServerResponse, resume: () => void): void {
  const socket = res.socket as GuardedSocket | null;
  const timeout = socket?.[kState]?.limits.sendTimeout ?? 0;
  if (timeout <= 0) {
    res.once('drain', resume);
    return;
  }
  const timer = setTimeout(cutShort, timeout, res);
  timer.unref();
  res.once('drain', () => {
    clearTimeout(timer);
    resume();
  });
}

function cutShort(res: ServerResponse): void {
  if (!res.destroyed) res.destroy(new Error('the client took nothing within the send timeout'));
}

function dispatch(state: ConnectionState, req: IncomingMessage, res: ServerResponse): void {
  const alone = !SAFE_METHODS.has(req.method ?? '');
  state.inFlight++;
  if (alone) state.alone = true;
  state.handler(req, res);
  // Answered with a head that ends the connection: what was parsed behind it is never answered.
  if (!state.refused && lastOfConnection(res)) stopDispatching(req.socket, state);
  if (res.writableEnded) {
    state.inFlight--;
    if (alone) state.alone = false;
    // Answered at once with a large body: it waits in the socket, watched for progress.
    if (req.socket.writableLength > state.limits.sendBuffer)
      watchProgress(req.socket as GuardedSocket, state);
  } else {
    res.once('prefinish', ended);
    res.once('close', release);
  }
}

/**
 * Ended later: nothing more is dispatched when its head ends the connection, and a large body
 * written whole (a revalidated hot entry, stale-if-error) is watched for progress.
 */
function ended(this: ServerResponse): void {
  const socket = this.req.socket as GuardedSocket | null;
  const state = socket?.[kState];
  if (socket && state && !state.refused && lastOfConnection(this)) stopDispatching(socket, state);
  if (socket && state && !socket.destroyed && socket.writableLength > state.limits.sendBuffer) {
    watchProgress(socket, state);
  }
}

/** Bytes the socket still has to hand to the kernel (libuv's queue shrinks as partial writes go out). */
function pendingBytes(socket: Socket): number {
  const handle = (socket as Socket & { _handle?: { writeQueueSize?: number } })._handle;
  return socket.writableLength + (handle?.writeQueueSize ?? 0);
}

/** Closes the connection when what waits in it makes no progress within the send timeout. */
function watchProgress(socket: GuardedSocket, state: ConnectionState): void {
  const timeout = state.limits.sendTimeout;
  if (timeout <= 0) return;
  state.pending = Number.POSITIVE_INFINITY;
  if (state.watch !== undefined) return;
  state.watch = setTimeout(checkProgress, timeout, socket, state);
  state.watch.unref();
}

function checkProgress(socket: GuardedSocket, state: ConnectionState): void {
  const pending = pendingBytes(socket);
  if (pending === 0 || socket.destroyed) {
    state.watch = undefined;
    return;
  }
  if (pending >= state.pending) {
    state.watch = undefined;
    socket.destroy(new Error('the client took nothing within the send timeout'));
    return;
  }
  state.pending = pending;
  state.watch!.refresh();
}

function release(this: ServerResponse): void {
  const socket = this.req.socket as GuardedSocket | null;
  const state = socket?.[kState];
  if (socket && state) {
    state.inFlight--;
    if (!SAFE_METHODS.has(this.req.method ?? '')) state.alone = false;
    if (!state.refused && lastOfConnection(this)) stopDispatching(socket, state);
    if (state.queue.length > 0) pump(socket, state);
  }
}

function pump(socket: GuardedSocket, state: ConnectionState): void {
  const limits = state.limits;
  while (!state.refused && state.queue.length > 0 && mayStart(state, state.queue[0]![0])) {
    if (socket.destroyed) return;
    if (socket.writableLength > limits.sendBuffer) {
      if (!state.waitingDrain) {
        state.waitingDrain = true;
        socket.once('drain', () => {
          state.waitingDrain = false;
          pump(socket, state);
        });
      }
      return;
    }
    const [req, res] = state.queue.shift()!;
    dispatch(state, req, res);
  }
  if (state.refused) state.queue.length = 0;
  else if (state.queue.length === 0 && state.paused) {
    state.paused = false;
    socket.resume();
  }
}
