/**
 * A small demo origin, started beside the node when no origin is configured, so that
 * `npm start` shows caching at work: cacheable pages, a Vary example, an uncacheable
 * page and a slow page.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoOrigin {
  readonly url: string;
  close(): Promise<void>;
}

const PAGES: Record<string, { cacheControl: string; body: () => string; vary?: string; delayMs?: number }> = {
  '/': {
    cacheControl: 'public, max-age=60',
    body: () =>
      `Hello from the Strata demo origin.\nThis page is cacheable for 60 s (generated ${new Date().toISOString()}).\nTry /time (max-age=5, stale-while-revalidate=30), /private (no-store), /slow (1 s origin).\n`,
  },
  '/time': {
    cacheControl: 'public, max-age=5, stale-while-revalidate=30',
    body: () => `${new Date().toISOString()}\n`,
  },
  '/private': { cacheControl: 'private, no-store', body: () => 'not cached\n' },
  '/slow': { cacheControl: 'public, max-age=30', body: () => 'worth the wait\n', delayMs: 1000 },
  '/lang': {
    cacheControl: 'public, max-age=60',
    vary: 'Accept-Language',
    body: () => 'one variant per Accept-Language\n',
  },
};

export async function startDemoOrigin(host = '127.0.0.1', port = 0): Promise<DemoOrigin> {
  const server: Server = createServer((req, res) => {
    const page = PAGES[(req.url ?? '/').split('?')[0]!];
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=10' });
      res.end('not found\n');
      return;
    }
    const send = () => {
      const body = page.body();
      const headers: Record<string, string> = {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': page.cacheControl,
        'last-modified': new Date(Date.now() - 3_600_000).toUTCString(),
        'surrogate-key': 'demo',
      };
      if (page.vary) headers.vary = page.vary;
      res.writeHead(200, headers);
      res.end(body);
    };
    if (page.delayMs) setTimeout(send, page.delayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
