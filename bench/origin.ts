/**
 * The bench origin: serves the fixed bodies of lib/bodies.ts, cacheable for an hour (no-store
 * under /pass/), after `--delay-ms` under /slow/, and counts what it served.
 *
 *   node bench/origin.ts --port 8080 [--delay-ms 200]
 *   GET /__count  -> {"total": N, "paths": {"/1k": N, ...}}   (not counted)
 *   POST /__reset -> zeroes the counters
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  type BenchPath,
  bodyFor,
  bodyOf,
  originHeaders,
  parseBenchPath,
  STREAMED_SIZE,
} from './lib/bodies.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'delay-ms': { type: 'string', default: '200' },
  },
});
const delayMs = Number(values['delay-ms']);

let total = 0;
const perPath = new Map<string, number>();

function count(target: string): void {
  const queryAt = target.indexOf('?');
  const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
  total++;
  perPath.set(pathname, (perPath.get(pathname) ?? 0) + 1);
}

function control(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.url === '/__count') {
    const body = JSON.stringify({ total, paths: Object.fromEntries(perPath) });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
    return true;
  }
  if (req.url === '/__reset' && req.method === 'POST') {
    total = 0;
    perPath.clear();
    res.writeHead(204).end();
    return true;
  }
  return false;
}

/** Streams a large body chunk by chunk, honouring backpressure; stops if the client goes. */
function stream(res: http.ServerResponse, path: BenchPath): void {
  const chunk = bodyOf(STREAMED_SIZE);
  let remaining = Number(originHeaders(path)['content-length']);
  res.writeHead(200, originHeaders(path));
  const pump = (): void => {
    while (remaining > 0 && !res.destroyed) {
      const piece = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
      remaining -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

function respond(res: http.ServerResponse, path: BenchPath, method: string | undefined): void {
  if (res.destroyed) return;
  if (path.size === STREAMED_SIZE && method !== 'HEAD') {
    stream(res, path);
    return;
  }
  res.writeHead(200, originHeaders(path));
  res.end(method === 'HEAD' ? undefined : bodyFor(path));
}

const server = http.createServer((req, res) => {
  if (control(req, res)) return;
  const target = req.url ?? '/';
  const path = parseBenchPath(target);
  if (path === null) {
    res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end('not a bench path\n');
    return;
  }
  count(target);
  if (path.slow && delayMs > 0) setTimeout(() => respond(res, path, req.method), delayMs);
  else respond(res, path, req.method);
});
server.keepAliveTimeout = 60_000;

server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : values.port;
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
