/**
 * Rate limits under load, on loopback, bounded in time. Not part of `npm test`.
 *
 *   node bench/hardening/rate-limits.ts [--seconds 5] [--part all|cost|workers|origin]
 *
 * - cost: ns per guard check on the hit path (SiteGuard.check with a rate limit, one known key,
 *   and with 10,000 client keys), in this process.
 * - workers: `strata serve --workers 2`, 100 req/s per client; client A (127.0.0.2) sends
 *   1,000 req/s over 20 connections, client B (127.0.0.3) 50 req/s; served rates per client.
 * - origin: one node, originLimit 20 req/s (burst 20) per client; one client sends random query
 *   strings at 500 req/s while also fetching a hot key at 100 req/s; origin requests per second
 *   and the hot key's hit rate.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { validateConfig } from '../../src/config/load.ts';
import { SiteGuard } from '../../src/security/site-guard.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, part: { type: 'string', default: 'all' } },
});
const SECONDS = Math.min(60, Number(values.seconds));
const PART = values.part;
const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;

function siteSecurity(security?: object) {
  const result = validateConfig({
    origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
    sites: [{ name: 's', hosts: ['*'], origins: ['o'], ...(security ? { security } : {}) }],
  });
  if (!('config' in result)) throw new Error(JSON.stringify(result.problems));
  return result.config.sites[0]!.security;
}

function cost(): void {
  const options = { trusted: () => false, maxHeaderSize: 16384 };
  const guard = new SiteGuard(siteSecurity({ rateLimit: { requestsPerSecond: 1e6, burst: 1e6 } }), options);
  const plain = new SiteGuard(siteSecurity(), options);
  const headers = { host: 'a.example', accept: '*/*', 'user-agent': 'wrk' };
  const raw = ['Host', 'a.example', 'Accept', '*/*', 'User-Agent', 'wrk'];
  const addresses = Array.from(
    { length: 10_000 },
    (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  );
  const run = (label: string, g: SiteGuard, pick: (i: number) => string) => {
    const n = 2_000_000;
    for (let i = 0; i < 200_000; i++) g.check(pick(i), 'GET', '/1k', headers, raw, i);
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) g.check(pick(i), 'GET', '/1k', headers, raw, 1e6 + i / 1000);
    const ns = Number(process.hrtime.bigint() - start) / n;
    console.log(`cost  ${label.padEnd(44)} ${ns.toFixed(0)} ns per request`);
  };
  run('guard, no rules (defaults: limits only)', plain, () => '127.0.0.1');
  run('guard + rate limit, one client', guard, () => '127.0.0.1');
  run('guard + rate limit, 10,000 clients round robin', guard, (i) => addresses[i % 10_000]!);
  const ruled = new SiteGuard(
    siteSecurity({
      rateLimit: { requestsPerSecond: 1e6, burst: 1e6 },
      deny: ['192.0.2.0/24', '2001:db8::/32'],
      allow: ['198.51.100.0/24'],
    }),
    options,
  );
  run('+ allow/deny lists, 10,000 clients round robin', ruled, (i) => addresses[i % 10_000]!);
}

async function startOrigin(): Promise<{ port: number; count: () => number; close: () => void }> {
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    res.writeHead(200, { 'cache-control': req.url?.startsWith('/hot') ? 'max-age=600' : 'max-age=600' });
    res.end('x'.repeat(1024));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, count: () => count, close: () => server.close() };
}

async function serve(
  config: object,
  workers: number,
  dir: string,
): Promise<{ url: string; child: ChildProcess }> {
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--workers',
      String(workers),
      '--listen',
      '127.0.0.1:0',
      '--config',
      file,
      '--cache-dir',
      join(dir, 'cache'),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving on (http:\/\/\S+?);?\s/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace(/;$/, ''));
      }
    });
  });
  return { url, child };
}

/** Sends `rate` req/s from `localAddress` for SECONDS; counts answers by status. */
async function drive(
  url: string,
  paths: (i: number) => string,
  rate: number,
  localAddress: string,
  conns: number,
) {
  const agent = new Agent({ keepAlive: true, maxSockets: conns, localAddress });
  const statuses = new Map<number, number>();
  const hits = { hit: 0 };
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < due; sent++) {
      const i = sent;
      const p = new Promise<void>((resolve) => {
        const req = request(`${url}${paths(i)}`, { agent }, (res) => {
          statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
          if (String(res.headers['cache-status']).includes('hit')) hits.hit++;
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.end();
      });
      inflight.add(p);
      void p.then(() => inflight.delete(p));
    }
    await sleep(2);
  }
  await Promise.race([Promise.all(inflight), sleep(3000)]);
  agent.destroy();
  return { statuses, hits: hits.hit };
}

async function workers(): Promise<void> {
  const origin = await startOrigin();
  const dir = mkdtempSync(join(tmpdir(), 'strata-rate-'));
  const node = await serve(
    {
      origins: [{ name: 'o', url: `http://127.0.0.1:${origin.port}` }],
      sites: [
        {
          name: 's',
          hosts: ['*'],
          origins: ['o'],
          security: { rateLimit: { requestsPerSecond: 100, burst: 100 } },
        },
      ],
      logging: { level: 'warn', access: false },
    },
    2,
    dir,
  );
  try {
    await sleep(500);
    const [a, b] = await Promise.all([
      drive(node.url, () => '/hot/a', 1000, '127.0.0.2', 20),
      drive(node.url, () => '/hot/a', 50, '127.0.0.3', 4),
    ]);
    const ok = (r: typeof a) => (r.statuses.get(200) ?? 0) / SECONDS;
    console.log(
      `workers  A (1,000 req/s): served ${ok(a).toFixed(1)} req/s (incl. burst 100 over ${SECONDS} s), 429: ${a.statuses.get(429) ?? 0}`,
    );
    console.log(
      `workers  A without the initial burst: ${(((a.statuses.get(200) ?? 0) - 100) / SECONDS).toFixed(1)} req/s`,
    );
    console.log(`workers  B (50 req/s): served ${ok(b).toFixed(1)} req/s, 429: ${b.statuses.get(429) ?? 0}`);
  } finally {
    node.child.kill('SIGTERM');
    origin.close();
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function originBound(): Promise<void> {
  const origin = await startOrigin();
  const dir = mkdtempSync(join(tmpdir(), 'strata-rate-'));
  const node = await serve(
    {
      origins: [{ name: 'o', url: `http://127.0.0.1:${origin.port}` }],
      sites: [
        {
          name: 's',
          hosts: ['*'],
          origins: ['o'],
          security: { originLimit: { requestsPerSecond: 20, burst: 20 } },
        },
      ],
      logging: { level: 'warn', access: false },
    },
    1,
    dir,
  );
  try {
    await sleep(300);
    const before = origin.count();
    const [busting, hot] = await Promise.all([
      drive(node.url, (i) => `/search?q=${i}-${Math.random().toString(36).slice(2)}`, 500, '127.0.0.2', 20),
      drive(node.url, () => '/hot/b', 100, '127.0.0.2', 4),
    ]);
    const originRps = (origin.count() - before) / SECONDS;
    console.log(
      `origin  origin requests: ${originRps.toFixed(1)} req/s (budget 20 req/s + burst 20 over ${SECONDS} s)`,
    );
    console.log(
      `origin  busting client: 200: ${busting.statuses.get(200) ?? 0}, 429: ${busting.statuses.get(429) ?? 0}`,
    );
    console.log(
      `origin  hot key: 200: ${hot.statuses.get(200) ?? 0}, hits: ${hot.hits}, 429: ${hot.statuses.get(429) ?? 0}`,
    );
  } finally {
    node.child.kill('SIGTERM');
    origin.close();
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (PART === 'all' || PART === 'cost') cost();
if (PART === 'all' || PART === 'workers') await workers();
if (PART === 'all' || PART === 'origin') await originBound();
