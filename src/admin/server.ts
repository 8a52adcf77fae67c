/**
 * The admin listener, on its own port (loopback by default): health, readiness,
 * metrics and stats. Every route but GET /healthz needs the bearer token.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { parseListen } from '../config/units.ts';
import type { Edge } from '../edge/edge.ts';
import { EdgeError } from '../errors.ts';
import { type Listener, startListener } from '../http/listener.ts';

export interface AdminOptions {
  config: Config;
  edge: Edge;
  evict: () => Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

export function tokenMatches(expected: string | undefined, header: string | undefined): boolean {
  if (expected === undefined || header === undefined) return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const wanted = Buffer.from(expected);
  // Compare in constant time; lengths differ → compare against itself to spend the same time.
  if (given.length !== wanted.length) {
    timingSafeEqual(wanted, wanted);
    return false;
  }
  return timingSafeEqual(given, wanted);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export async function startAdmin(options: AdminOptions): Promise<Listener> {
  const { config, edge } = options;
  const address = parseListen(config.admin.listen)!;
  if (config.admin.token === undefined && !isLoopback(address.host)) {
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      'admin.token is required when the admin listener is not on loopback',
    );
  }
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method === 'GET' && url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
    if (!tokenMatches(config.admin.token, req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer');
      return json(res, 401, {
        error: config.admin.token === undefined ? 'no admin token configured' : 'unauthorized',
      });
    }
    if (req.method === 'GET' && url.pathname === '/readyz') return json(res, 200, { status: 'ready' });
    if (req.method === 'GET' && url.pathname === '/metrics') {
      edge.metrics.storeBytes.set(edge.store.usage().bytes);
      const text = await edge.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': edge.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/stats') {
      const usage = edge.store.usage();
      return json(res, 200, {
        store: {
          bytes: usage.bytes,
          entries: usage.entries,
          capacity: config.cache.maxSize,
          memoryBytes: edge.store.memory.bytes,
        },
        collapse: { pending: edge.collapse.size, waiters: edge.collapse.waiters },
      });
    }
    return json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
  return startListener(
    {
      host: address.host,
      port: address.port,
      maxHeaderSize: 16 * 1024,
      requestTimeout: 30_000,
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      handler(req, res).catch((error: unknown) => {
        edge.log.error({ err: error }, 'admin request failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
}
