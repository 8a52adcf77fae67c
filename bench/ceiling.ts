/**
 * The ceiling: a bare node:http server that answers every bench path with the bytes and headers
 * a cache hit would carry, straight from memory. Whatever a Node cache does on a hit, it cannot
 * beat this on the same core and the same Node version.
 *
 *   node bench/ceiling.ts --port 8081 [--workers 2] [--busy-us N] [--tls-port 8443 --tls-cert F --tls-key F [--h2 [--h2-raw]]]
 *
 * With --tls-port it also serves HTTPS there: node:https (HTTP/1.1), or with --h2 node:http2's
 * secure server (h2 and HTTP/1.1 by ALPN) through its compatibility API (Http2ServerRequest and
 * Http2ServerResponse); with --h2-raw as well, HTTP/2 is answered on the raw 'stream' event
 * (`stream.respond` + `stream.end`), the way Strata answers it, and HTTP/1.1 as before.
 *
 * With --busy-us N, every HTTP/1.1 answer first spins N µs of the clock on the CPU: a calibration
 * row (hit-1k's `ceiling+5us`) that shows, in the same run, what N µs of extra work per request
 * costs in the CPU-per-request column (on a shared 2-core VM, more than N: docs/performance.md).
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
    'h2-raw': { type: 'boolean', default: false },
    'busy-us': { type: 'string', default: '0' },
  },
});
const busyNs = BigInt(Math.round(Number(values['busy-us']) * 1000));

/** Spins on the clock for --busy-us (CPU work the size of a cache's own per-request code). */
function busy(): void {
  if (busyNs === 0n) return;
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() - start < busyNs) {
    // spinning
  }
}
const workers = Number(values.workers);

interface Prepared {
  headers: Record<string, string>;
  /** The same head as a flat list for stream.respond, `:status` first. */
  h2: string[];
  body: Buffer;
}

const MAX_PREPARED = 10_000;
const prepared = new Map<string, Prepared | null>();

function prepare(target: string): Prepared | null {
  let found = prepared.get(target);
  if (found !== undefined) return found;
  const path = parseBenchPath(target);
  if (path === null) found = null;
  else {
    const headers = hitHeaders(path, 'ceiling');
    found = { headers, h2: [':status', '200', ...Object.entries(headers).flat()], body: bodyFor(path) };
  }
  if (prepared.size < MAX_PREPARED) prepared.set(target, found);
  return found;
}

/** HTTP/2 on the raw stream: one flat head list (copied: respond() may add to it) and the body. */
function rawHandler(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on('error', () => {});
  const found = prepare(headers[':path'] ?? '/');
  if (found === null) {
    stream.respond({ ':status': 404, 'content-type': 'text/plain' });
    stream.end('not a bench path\n');
    return;
  }
  stream.respond(found.h2.slice() as never);
  stream.end(found.body);
}

function serve(): void {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    busy();
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
    let secure: http2.Http2SecureServer | https.Server;
    if (values.h2) {
      const h2 = http2.createSecureServer({ ...tls, allowHTTP1: true }, handler as never);
      if (values['h2-raw']) {
        // The 'request' listener (kept for HTTP/1.1) made node:http2 add its compatibility one.
        h2.removeAllListeners('stream');
        h2.on('stream', rawHandler);
      }
      secure = h2;
    } else secure = https.createServer({ ...tls, keepAliveTimeout: 60_000 }, handler);
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
