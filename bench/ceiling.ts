/**
 * The ceiling: a bare node:http server that answers every bench path with the bytes and headers
 * a cache hit would carry, straight from memory. Whatever a Node cache does on a hit, it cannot
 * beat this on the same core and the same Node version.
 *
 *   node bench/ceiling.ts --port 8081 [--workers 2] [--tls-port 8443 --tls-cert F --tls-key F [--h2]]
 *
 * With --tls-port it also serves HTTPS there: node:https (HTTP/1.1), or with --h2 node:http2's
 * secure server (h2 and HTTP/1.1 by ALPN) through the same compatibility handler Strata uses.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { parseArgs } from 'node:util';
import { bodyFor, hitHeaders, parseBenchPath } from './lib/bodies.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '1' },
    'tls-port': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    h2: { type: 'boolean', default: false },
  },
});
const workers = Number(values.workers);

interface Prepared {
  headers: Record<string, string>;
  body: Buffer;
}

const MAX_PREPARED = 10_000;
const prepared = new Map<string, Prepared | null>();

function prepare(target: string): Prepared | null {
  let found = prepared.get(target);
  if (found !== undefined) return found;
  const path = parseBenchPath(target);
  found = path === null ? null : { headers: hitHeaders(path, 'ceiling'), body: bodyFor(path) };
  if (prepared.size < MAX_PREPARED) prepared.set(target, found);
  return found;
}

function serve(): void {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const found = prepare(req.url ?? '/');
    if (found === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not a bench path\n');
      return;
    }
    res.writeHead(200, found.headers);
    res.end(found.body);
  };
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  server.listen(Number(values.port), values.host);
  if (values['tls-port'] !== undefined) {
    const tls = {
      cert: readFileSync(values['tls-cert'] ?? ''),
      key: readFileSync(values['tls-key'] ?? ''),
      minVersion: 'TLSv1.2' as const,
    };
    const secure = values.h2
      ? http2.createSecureServer({ ...tls, allowHTTP1: true }, handler as never)
      : https.createServer({ ...tls, keepAliveTimeout: 60_000 }, handler);
    secure.listen(Number(values['tls-port']), values.host);
  }
  process.once('SIGTERM', () => process.exit(0));
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.once('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}
