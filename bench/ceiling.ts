/**
 * The ceiling: a bare node:http server that answers every bench path with the bytes and headers
 * a cache hit would carry, straight from memory. Whatever a Node cache does on a hit, it cannot
 * beat this on the same core and the same Node version.
 *
 *   node bench/ceiling.ts --port 8081 [--workers 2]
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { bodyOf, hitHeaders, parseBenchPath } from './lib/bodies.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '1' },
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
  found = path === null ? null : { headers: hitHeaders(path, 'ceiling'), body: bodyOf(path.size) };
  if (prepared.size < MAX_PREPARED) prepared.set(target, found);
  return found;
}

function serve(): void {
  const server = http.createServer((req, res) => {
    const found = prepare(req.url ?? '/');
    if (found === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not a bench path\n');
      return;
    }
    res.writeHead(200, found.headers);
    res.end(found.body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(values.port), values.host);
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
