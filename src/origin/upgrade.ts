/**
 * A WebSocket handshake sent to one origin, on a connection of its own (an upgraded connection
 * never returns to a pool): node:http's client, with the origin's connect timeout, response
 * timeout and TLS settings. A 101 hands over the connection; any other answer is an ordinary
 * response, its body bounded by the origin's body timeout.
 */
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { EdgeError } from '../errors.ts';
import { originError } from './errors.ts';
import type { OriginTlsOptions } from './tls.ts';

export interface UpgradeTarget {
  name: string;
  url: string;
  connectTimeout: number;
  responseTimeout: number;
  bodyTimeout: number;
  tls: OriginTlsOptions;
}

/** The origin's answer to a handshake: `tunnel` set when it switched protocols (101). */
export interface UpgradeResponse {
  origin: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The answer's body (none for a 101). */
  body: IncomingMessage;
  ms: number;
  attempts?: number;
  /** The origin's connection after its 101, and the bytes it sent right after the 101 head. */
  tunnel: { socket: Socket; head: Buffer } | undefined;
}

/**
 * A timeout as a timer can hold it: node's timers fire after 1 ms for anything above 2^31-1 ms
 * (about 24.8 days), where undici's requests to the same origin wait as configured.
 */
function timerMs(ms: number): number {
  return Math.min(ms, 2 ** 31 - 1);
}

/** A failure named as undici names it, so it is mapped (and retried) like any origin request's. */
function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export function sendUpgrade(
  target: UpgradeTarget,
  path: string,
  headers: Record<string, string | string[]>,
  signal: AbortSignal | undefined,
): Promise<UpgradeResponse> {
  const url = new URL(target.url);
  const secure = url.protocol === 'https:';
  const started = performance.now();
  const { promise, resolve, reject } = Promise.withResolvers<UpgradeResponse>();
  const outgoing: ClientRequest = (secure ? httpsRequest : httpRequest)({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (secure ? 443 : 80),
    method: 'GET',
    path,
    headers,
    agent: false,
    setHost: false,
    ...(secure ? target.tls : {}),
  });
  let answered = false;
  const fail = (error: unknown): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    outgoing.destroy();
    // Closed before any answer: the handshake failed, no response was cut short.
    const code = (error as { code?: string }).code;
    if (code === 'ECONNRESET')
      return reject(
        new EdgeError('EDGE_ERR_ORIGIN_CONNECT', `request to origin ${target.name} failed`, {
          origin: target.name,
          cause: error,
        }),
      );
    reject(originError(error, target.name));
  };
  let timer = setTimeout(
    () => fail(failure('UND_ERR_CONNECT_TIMEOUT', 'connect timeout')),
    timerMs(target.connectTimeout),
  );
  outgoing.once('socket', (socket: Socket) => {
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => fail(failure('UND_ERR_HEADERS_TIMEOUT', 'headers timeout')),
        timerMs(target.responseTimeout),
      );
    });
  });
  outgoing.on('error', fail);
  // The client went away before the origin answered: the handshake is dropped with it.
  signal?.addEventListener('abort', () => fail(failure('UND_ERR_ABORTED', 'client gone')), { once: true });
  const answer = (res: IncomingMessage, tunnel: UpgradeResponse['tunnel']): void => {
    answered = true;
    clearTimeout(timer);
    const ms = performance.now() - started;
    resolve({
      origin: target.name,
      status: res.statusCode ?? 0,
      headers: res.headers,
      body: res,
      ms,
      tunnel,
    });
  };
  outgoing.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
    if (answered) return void socket.destroy();
    if (!switchesToWebSocket(res)) {
      socket.destroy();
      return fail(failure('UND_ERR_INFO', 'a 101 that does not switch to websocket'));
    }
    answer(res, { socket, head });
  });
  outgoing.once('response', (res: IncomingMessage) => {
    if (answered) return void res.destroy();
    // A 101 node:http did not take as an upgrade (no Upgrade field): no protocol to tunnel.
    if (res.statusCode === 101) {
      res.destroy();
      return fail(failure('UND_ERR_INFO', 'a 101 without Upgrade'));
    }
    // A body that stalls is cut short, as origins[].bodyTimeout cuts any other.
    res.socket.setTimeout(timerMs(target.bodyTimeout), () =>
      res.destroy(failure('UND_ERR_BODY_TIMEOUT', 'body timeout')),
    );
    answer(res, undefined);
  });
  outgoing.end();
  return promise;
}

/**
 * Whether a 101 switches to the protocol the handshake asked for: its Upgrade names `websocket`
 * (RFC 6455 §4.1: the client fails the connection otherwise; RFC 9110 §7.8: a server switches
 * only to a protocol the client listed). Anything else is not relayed as a tunnel.
 */
function switchesToWebSocket(res: IncomingMessage): boolean {
  const upgrade = res.headers.upgrade;
  return upgrade !== undefined && upgrade.trim().toLowerCase() === 'websocket';
}
