/**
 * The head of a 1 KiB hit written two ways, in one process, alternating in small batches so
 * that whatever else the machine does falls on both alike: node:http's `writeHead` with the
 * stored header list (what every hit did before) and `endPrepared` (src/http/prepared-head.ts).
 * Each response is a real `ServerResponse` on a socket that discards what it is given, so the
 * figures are the JavaScript side of a hit's head and body write, without the kernel's send.
 *
 *   node bench/prepared-head.ts [--rounds 20] [--batch 2000]
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { endPrepared } from '../src/http/prepared-head.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '20' }, batch: { type: 'string', default: '2000' } },
});
const rounds = Number(values.rounds);
const batch = Number(values.batch);

// A stored response of real size: the demo's fields plus the ones a CDN origin sends.
const stored = [
  'Content-Type',
  'application/json; charset=utf-8',
  'Cache-Control',
  'public, max-age=300, stale-while-revalidate=60',
  'ETag',
  '"5f3c2a-1024-8e1f"',
  'Last-Modified',
  'Wed, 02 Dec 2026 10:00:00 GMT',
  'Date',
  'Wed, 02 Dec 2026 10:00:00 GMT',
  'Vary',
  'Accept-Encoding',
  'Via',
  '1.1 strata',
  'X-Content-Type-Options',
  'nosniff',
  'Access-Control-Allow-Origin',
  '*',
];
const body = Buffer.alloc(1024, 'x');

/** A socket that takes every write at once and keeps nothing. */
function sink(): Socket {
  const socket = new Socket();
  const discard = new Writable({
    writev(_chunks, done) {
      done();
    },
    write(_chunk, _encoding, done) {
      done();
    },
  });
  Object.defineProperty(socket, 'write', { value: discard.write.bind(discard) });
  Object.defineProperty(socket, 'writable', { value: true });
  return socket;
}

const socket = sink();
const request = new IncomingMessage(socket);
request.httpVersionMajor = 1;
request.httpVersionMinor = 1;
request.method = 'GET';

function fresh(): ServerResponse {
  const res = new ServerResponse(request);
  res.shouldKeepAlive = true;
  (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = 5000;
  return res;
}

function viaWriteHead(n: number): void {
  for (let i = 0; i < n; i++) {
    const res = fresh();
    const headers = stored.slice();
    headers.push('Age', String(i % 60), 'Cache-Status', 'strata; hit; ttl=240', 'X-Request-Id', `r-${i}`);
    headers.push('Content-Length', String(body.length));
    res.writeHead(200, headers);
    res.end(body);
  }
}

function viaPrepared(n: number): void {
  for (let i = 0; i < n; i++) {
    const res = fresh();
    const extra = ['Age', String(i % 60), 'Cache-Status', 'strata; hit; ttl=240', 'X-Request-Id', `r-${i}`];
    if (!endPrepared(res, 200, stored, extra, body)) throw new Error('not prepared');
  }
}

function cpuMicros(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

// Warm both paths (JIT) before measuring.
viaWriteHead(batch);
viaPrepared(batch);
const per = { writeHead: [] as number[], prepared: [] as number[] };
for (let round = 0; round < rounds; round++) {
  per.writeHead.push(cpuMicros(() => viaWriteHead(batch)) / batch);
  per.prepared.push(cpuMicros(() => viaPrepared(batch)) / batch);
}
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const a = median(per.writeHead);
const b = median(per.prepared);
process.stdout.write(
  `head + 1 KiB body, CPU µs per response (median of ${rounds} rounds of ${batch}):\n` +
    `  writeHead: ${a.toFixed(2)}\n  prepared:  ${b.toFixed(2)}\n  saved:     ${(a - b).toFixed(2)} (${((1 - b / a) * 100).toFixed(0)}%)\n`,
);
