/**
 * The origin for our own cases: answers each path from a script, counts and records the
 * requests it sees. Bodies default to `<path> #<n>` so a body tells which origin response it is.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { LOOPBACK } from '../lib/net.ts';

export interface OriginReply {
  status?: number;
  /** A list sends the field on several lines, in order. */
  headers?: Record<string, string | string[]>;
  body?: string;
  /** Send a 103 Early Hints with these fields first (RFC 8297); `link` is required by Node. */
  earlyHints?: Record<string, string>;
  /** Wait before answering (to hold a fill open while other requests arrive). */
  delayMs?: number;
  /** Answer 304 when the request's If-None-Match carries this reply's ETag. */
  revalidate?: boolean;
}

export interface SeenRequest {
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export type OriginScript = OriginReply | ((request: SeenRequest) => OriginReply);

export class ScriptedOrigin {
  readonly #scripts = new Map<string, OriginScript>();
  readonly #seen = new Map<string, SeenRequest[]>();
  #server: Server | undefined;
  port = 0;

  script(path: string, script: OriginScript): void {
    this.#scripts.set(path, script);
  }

  requests(path: string): SeenRequest[] {
    return this.#seen.get(path) ?? [];
  }

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const path = new URL(request.url ?? '/', 'http://origin.invalid').pathname;
      const seen = this.#seen.get(path) ?? [];
      this.#seen.set(path, seen);
      const entry: SeenRequest = {
        n: seen.length + 1,
        method: request.method ?? 'GET',
        path,
        headers: request.headers,
      };
      seen.push(entry);
      request.resume();
      const script = this.#scripts.get(path);
      const reply: OriginReply =
        script === undefined
          ? { status: 404, body: 'no script' }
          : typeof script === 'function'
            ? script(entry)
            : script;
      const send = (): void => {
        const headers = { 'content-type': 'text/plain', ...reply.headers };
        const etag = reply.headers?.ETag ?? reply.headers?.etag;
        if (reply.revalidate && etag !== undefined && request.headers['if-none-match'] === etag) {
          response.writeHead(304, headers);
          response.end();
          return;
        }
        response.writeHead(reply.status ?? 200, headers);
        response.end(request.method === 'HEAD' ? undefined : (reply.body ?? `${path} #${entry.n}`));
      };
      if (reply.earlyHints) response.writeEarlyHints(reply.earlyHints);
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
    server.keepAliveTimeout = 10_000;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
