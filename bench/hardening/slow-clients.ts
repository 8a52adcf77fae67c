/**
 * slowhttptest-style runs against a real node on loopback: slow request bodies, slow readers
 * of a 10 MiB hit, and one connection pipelining misses without reading. Each scenario is
 * bounded in time and connections; the node runs as its own process (its RSS is measured),
 * the origin and the clients run here. Not part of `npm test`.
 *
 *   node bench/hardening/slow-clients.ts [--clients 200] [--seconds 15] [--scenario all|body|read|pipeline|slowhttptest] [--modes slowloris,slowBody,slowRead]
 *
 * When slowhttptest (Debian package `slowhttptest`) is installed, its slowloris (-H), slow-body
 * (-B) and slow-read (-X) modes also run against the same node (scenario `slowhttptest`, or
 * `all`), each for the same duration, with a prober fetching a cached object every 200 ms.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { which } from '../lib/processes.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '15' },
    scenario: { type: 'string', default: 'all' },
    modes: { type: 'string', default: 'slowloris,slowBody,slowRead' },
  },
});
const CLIENTS = Math.min(2000, Number(values.clients));
const SECONDS = Math.min(180, Number(values.seconds));
const LONG = `/media/2026/12/archive/${'quarterly-report-download-'.repeat(4)}file.bin`;
const BIG = Buffer.alloc(10 * 1024 * 1024, 7);

// ---- origin: counts requests when their headers arrive -------------------------------------
const seen = new Map<string, number>();
let originTotal = 0;
const origin = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  originTotal++;
  seen.set(path, (seen.get(path) ?? 0) + 1);
  req.on('error', () => {});
  req.resume();
  req.on('end', () => {
    if (path === LONG) {
      res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-type': 'application/octet-stream' });
      res.end(BIG);
    } else if (path === '/cached/logo.svg') {
      res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-type': 'image/svg+xml' });
      res.end(`<svg xmlns="http://www.w3.org/2000/svg">${'<g/>'.repeat(200)}</svg>`);
    } else if (path === '/miss') {
      res.writeHead(200, { 'cache-control': 'max-age=3600' });
      res.end(Buffer.alloc(16 * 1024, 1));
    } else {
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end('ok');
    }
  });
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const originPort = (origin.address() as AddressInfo).port;

// ---- node: its own process, a config with small origin pool and short send timeout --------
const dir = mkdtempSync(join(tmpdir(), 'strata-hardening-'));
const nodePort = await freePort();
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    listeners: [{ listen: `127.0.0.1:${nodePort}` }],
    origins: [{ name: 'origin', url: `http://127.0.0.1:${originPort}`, connections: 32 }],
    sites: [{ name: 'default', hosts: ['*'], origins: ['origin'] }],
    admin: { enabled: false },
    logging: { level: 'warn', access: false },
    cache: { dir: join(dir, 'cache') },
    proxy: { sendTimeout: '5s', requestBodyTimeout: '5s' },
  }),
);
const nodeBin = join(import.meta.dirname, '../../node_modules/.bin/node');
const child: ChildProcess = spawn(nodeBin, ['cli/strata.ts', 'serve', '--config', join(dir, 'config.json')], {
  cwd: join(import.meta.dirname, '../..'),
  stdio: ['ignore', 'inherit', 'inherit'],
});
const stop = () => {
  if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
};
process.on('exit', stop);
await waitListening(nodePort);

const results: Record<string, unknown> = {};
try {
  if (values.scenario === 'all' || values.scenario === 'body') results.slowBody = await slowBody();
  if (values.scenario === 'all' || values.scenario === 'read') results.slowRead = await slowRead();
  if (values.scenario === 'all' || values.scenario === 'pipeline') results.pipeline = await pipeline();
  if ((values.scenario === 'all' || values.scenario === 'slowhttptest') && which('slowhttptest') !== null)
    results.slowhttptest = await runSlowhttptest();
} finally {
  stop();
  origin.close();
  origin.closeAllConnections();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);

// ---- scenarios ------------------------------------------------------------------------------

/** CLIENTS POSTs that send headers and dribble one byte a second; a prober measures misses meanwhile. */
async function slowBody(): Promise<unknown> {
  seen.clear();
  const sockets: Socket[] = [];
  const answers = new Map<string, number>();
  for (let i = 0; i < CLIENTS; i++) {
    const socket = connect(nodePort, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('data', (data: Buffer) => {
      const status = data.toString('latin1').slice(9, 12);
      answers.set(status, (answers.get(status) ?? 0) + 1);
    });
    socket.write(`POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 100000\r\n\r\nx`);
    sockets.push(socket);
  }
  const drip = setInterval(() => {
    for (const socket of sockets) if (!socket.destroyed) socket.write('x');
  }, 1000);
  const probe = await probeWhile(SECONDS * 1000);
  clearInterval(drip);
  for (const socket of sockets) socket.destroy();
  return {
    clients: CLIENTS,
    originRequestsForSlowBodies: seen.get('/orders') ?? 0,
    answers: Object.fromEntries(answers),
    probe,
  };
}

/** CLIENTS connections request a stored 10 MiB body and never read. */
async function slowRead(): Promise<unknown> {
  await get(LONG); // fill
  await sleep(500);
  const before = rss();
  const sockets: Socket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = connect(nodePort, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`GET ${LONG} HTTP/1.1\r\nHost: 127.0.0.1:${nodePort}\r\n\r\n`);
    socket.pause();
    sockets.push(socket);
  }
  let peak = before;
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    await sleep(250);
    peak = Math.max(peak, rss());
  }
  const probe = await probeWhile(1000);
  // Read what is left: a connection the node closed ends; one it kept delivers the whole body
  // and stays open (keep-alive).
  let closedByNode = 0;
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 3000);
          socket.once('end', () => {
            closedByNode++;
            clearTimeout(timer);
            resolve();
          });
          socket.resume();
        }),
    ),
  );
  for (const socket of sockets) socket.destroy();
  return {
    clients: CLIENTS,
    rssBeforeMiB: mib(before),
    rssPeakMiB: mib(peak),
    perClientKiB: Math.round((peak - before) / CLIENTS / 1024),
    closedByNode,
    probe,
  };
}

/** One connection pipelines 10,000 distinct misses and never reads. */
async function pipeline(): Promise<unknown> {
  const before = originTotal;
  const rssBefore = rss();
  const socket = connect(nodePort, '127.0.0.1');
  socket.on('error', () => {});
  let payload = '';
  for (let i = 0; i < 10_000; i++)
    payload += `GET /miss?n=${i}-${'p'.repeat(80)} HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
  socket.write(payload);
  socket.pause();
  let peak = rssBefore;
  const end = Date.now() + Math.min(SECONDS, 10) * 1000;
  while (Date.now() < end) {
    await sleep(250);
    peak = Math.max(peak, rss());
  }
  socket.destroy();
  return { pipelined: 10_000, originFetches: originTotal - before, rssGrowthMiB: mib(peak - rssBefore) };
}

/**
 * slowhttptest's slowloris (-H), slow body (-B) and slow read (-X) modes, one after the other,
 * each with CLIENTS connections for SECONDS, while a prober fetches a cached object every
 * 200 ms: how many probes were answered 200, and how fast (the done-criterion of the edge
 * security issue: 100% answered, p99 < 1 s, with 1,000 connections for 2 minutes).
 */
async function runSlowhttptest(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const cached = '/cached/logo.svg';
  // Both objects stored first: the probes and the slow readers are hits.
  for (const path of [cached, LONG]) if ((await get(path)) !== 200) throw new Error(`priming ${path} failed`);
  for (const [mode, args] of [
    ['slowloris', ['-H', '-i', '10', '-r', '200', '-u', `http://127.0.0.1:${nodePort}/orders`]],
    ['slowBody', ['-B', '-i', '1', '-r', '200', '-s', '100000', '-u', `http://127.0.0.1:${nodePort}/orders`]],
    [
      'slowRead',
      [
        '-X',
        '-r',
        '200',
        '-w',
        '1',
        '-y',
        '1',
        '-n',
        '5',
        '-z',
        '1',
        '-u',
        `http://127.0.0.1:${nodePort}${LONG}`,
      ],
    ],
  ] as const) {
    if (!String(values.modes).split(',').includes(mode)) continue;
    const started = Date.now();
    const tool = spawn(
      'slowhttptest',
      ['-c', String(CLIENTS), '-l', String(SECONDS), ...args, '-g', '-o', join(dir, mode)],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let report = '';
    tool.stdout?.on('data', (chunk: Buffer) => {
      report = (report + chunk.toString('utf8')).slice(-4000);
    });
    const exited = new Promise<void>((resolve) => tool.once('exit', () => resolve()));
    const killer = setTimeout(() => tool.kill('SIGKILL'), (SECONDS + 30) * 1000);
    // Let the tool open its connections first.
    await sleep(3000);
    const probe = await probeWhile((SECONDS - 5) * 1000, cached, 200);
    await exited;
    clearTimeout(killer);
    const status = /status at \d+ seconds?:[\s\S]*$/.exec(report)?.[0] ?? report.slice(-600);
    out[mode] = {
      seconds: Math.round((Date.now() - started) / 1000),
      probe,
      slowhttptest: status.split('\n').slice(0, 8).join(' | '),
    };
  }
  return out;
}

// ---- helpers --------------------------------------------------------------------------------

/** GETs `path` (default a no-store one) every `everyMs` for `ms`: how many were answered, and how fast. */
async function probeWhile(
  ms: number,
  path?: string,
  everyMs = 100,
): Promise<{
  sent: number;
  ok: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  failures?: Record<string, number>;
  failedAtS?: number[];
}> {
  const times: number[] = [];
  const failures = new Map<string, number>();
  const failedAt: number[] = [];
  let sent = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    sent++;
    const start = performance.now();
    const status = await get(path ?? `/probe?${sent}`, 2000).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
      failedAt.push(Math.round((Date.now() - (end - ms)) / 100) / 10);
      return 0;
    });
    if (status === 200) times.push(performance.now() - start);
    else if (status !== 0) failures.set(`status ${status}`, (failures.get(`status ${status}`) ?? 0) + 1);
    await sleep(everyMs);
  }
  times.sort((a, b) => a - b);
  return {
    sent,
    ok: times.length,
    p50ms: Math.round(times[Math.floor(times.length / 2)] ?? -1),
    p99ms: Math.round(times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] ?? -1),
    maxMs: Math.round(times.at(-1) ?? -1),
    ...(failures.size > 0 ? { failures: Object.fromEntries(failures), failedAtS: failedAt } : {}),
  };
}

function get(path: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: nodePort, path, agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function rss(): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error('the node did not start listening');
}
