/**
 * The forwarding reference: a bare node:http server that forwards every request to the origin
 * through one undici Pool (keep-alive, the same library and settings Strata's origin pool uses)
 * and streams the answer back, with no cache, no checks and no header work beyond dropping the
 * hop-by-hop fields. What a Node proxy that stores nothing cannot undercut on the same core.
 *
 *   node bench/forwarder.ts --port 8082 --origin http://127.0.0.1:8080
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    origin: { type: 'string' },
    connections: { type: 'string', default: '256' },
  },
});
if (values.origin === undefined) throw new Error('--origin URL is required');

const pool = new Pool(values.origin, {
  connections: Number(values.connections),
  keepAliveTimeout: 4000,
  pipelining: 1,
});

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'trailer']);

function forwardHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1] as string);
  }
  return out;
}

const server = http.createServer(async (req, res) => {
  if (req.url === '/__ready') {
    res.end('ok');
    return;
  }
  try {
    const answer = await pool.request({
      method: req.method as 'GET',
      path: req.url ?? '/',
      headers: forwardHeaders(req.rawHeaders),
      body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
    });
    const headers: string[] = [];
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      if (Array.isArray(value)) for (const one of value) headers.push(name, one);
      else headers.push(name, value);
    }
    res.writeHead(answer.statusCode, headers);
    answer.body.on('data', (chunk: Buffer) => {
      if (!res.write(chunk)) {
        answer.body.pause();
        res.once('drain', () => answer.body.resume());
      }
    });
    answer.body.on('end', () => res.end());
    answer.body.on('error', () => res.destroy());
  } catch {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), values.host);
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
