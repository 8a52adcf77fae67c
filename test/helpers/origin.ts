/**
 * A scripted origin for tests: a real node:http server on 127.0.0.1, port 0, whose
 * answers are set per path and which counts every request that reaches it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse, hit: number) => void | Promise<void>;

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface TestOrigin {
  readonly url: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** Requests that reached `path` (all paths when omitted). */
  count(path?: string): number;
  route(path: string, route: Route): void;
  close(): Promise<void>;
}

/** A route answering `body` with the given status and headers. */
export function respond(
  status: number,
  headers: Record<string, string | string[]>,
  body: string | Buffer = '',
): Route {
  return (_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  };
}

export async function startOrigin(routes: Record<string, Route> = {}): Promise<TestOrigin> {
  const table = new Map(Object.entries(routes));
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body: Buffer.concat(chunks) });
      const route = table.get(path) ?? table.get(path.split('?')[0]!);
      if (!route) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no route\n');
        return;
      }
      const hits = requests.filter((r) => r.path === path).length;
      Promise.resolve(route(req, res, hits)).catch((error: unknown) => res.destroy(error as Error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    count: (path) => (path === undefined ? requests.length : requests.filter((r) => r.path === path).length),
    route: (path, route) => table.set(path, route),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
