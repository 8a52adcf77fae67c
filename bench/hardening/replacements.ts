/**
 * Worker replacement under connection churn, on loopback, bounded in time. Not part of `npm test`.
 *
 *   node bench/hardening/replacements.ts [--seconds 40] [--clients 4] [--workers 2] [--mode hup|kill]
 *                                        [--accept primary|workers]
 *
 * `strata serve --workers N` (its own process) in front of an origin in this process; `clients`
 * loops each send one request at a time on a fresh connection (`Connection: close`, a no-store
 * answer, so every request reaches the origin) while, in mode `hup`, the primary is sent SIGHUP
 * every 1.2 s (one replacement of every worker at a time; a SIGHUP during one is ignored), or
 * in mode `kill`, a worker is killed (SIGKILL) every 3.6 s and the primary restarts it. Every
 * request has a 5 s deadline. Reports the replacements, the requests answered, the ones that
 * failed (by reason) and the ones never answered: a client left connected to nobody. `--accept`
 * is the node's `node.accept` (docs/operations.md, Workers).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '40' },
    clients: { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'hup' },
    accept: { type: 'string', default: 'primary' },
  },
});
if (values.mode !== 'hup' && values.mode !== 'kill') throw new Error('--mode is hup or kill');
if (values.accept !== 'primary' && values.accept !== 'workers')
  throw new Error('--accept is primary or workers');
const SECONDS = Math.min(300, Number(values.seconds));
const CLIENTS = Math.min(64, Number(values.clients));
const DEADLINE_MS = 5000;
const HUP_MS = 1200;
const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;
const PATH = `/replacement/${'churn-'.repeat(20)}item.js?session=${'a'.repeat(40)}`;

const origin = createServer((_req, res) => {
  res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'application/javascript' });
  res.end('x'.repeat(2048));
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const originPort = (origin.address() as AddressInfo).port;

const dir = mkdtempSync(join(tmpdir(), 'strata-replacements-'));
const configFile = join(dir, 'strata.json');
writeFileSync(
  configFile,
  JSON.stringify({ logging: { level: 'info', access: false }, node: { accept: values.accept } }),
);
const node = spawn(
  process.execPath,
  [
    CLI,
    'serve',
    '--workers',
    values.workers,
    '--listen',
    '127.0.0.1:0',
    '--origin',
    `http://127.0.0.1:${originPort}`,
    '--cache-dir',
    join(dir, 'cache'),
    '--config',
    configFile,
    '--admin-listen',
    '127.0.0.1:0',
  ],
  { stdio: ['ignore', 'pipe', 'pipe'] },
);
let replaced = 0;
node.stdout!.on('data', (data: Buffer) => {
  replaced += data.toString().split('"workers replaced"').length - 1;
});
let stderr = '';
const port = await new Promise<number>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no banner in 30 s: ${stderr}`)), 30_000);
  node.stderr!.on('data', (data: Buffer) => {
    stderr += data.toString();
    const match = /serving on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
    if (match) {
      clearTimeout(timer);
      resolve(Number(match[1]));
    }
  });
});

const outcome = { answered: 0, lost: 0, failed: new Map<string, number>() };
const fail = (why: string) => outcome.failed.set(why, (outcome.failed.get(why) ?? 0) + 1);

function one(): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (why === undefined) outcome.answered++;
      else if (why === 'lost') outcome.lost++;
      else fail(why);
      resolve();
    };
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: PATH,
        agent: false,
        headers: { host: 'churn.test', connection: 'close' },
      },
      (res) => {
        res.resume();
        res.on('end', () => settle(res.statusCode === 200 ? undefined : `status ${res.statusCode}`));
        res.on('error', (error) => settle(error.message));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    const timer = setTimeout(() => {
      settle('lost');
      req.destroy();
    }, DEADLINE_MS);
    req.end();
  });
}

const end = Date.now() + SECONDS * 1000;
let ticks = 0;
let killed = 0;
/** One worker of the node, in turn (its children as ps lists them). */
function killWorker(): void {
  const workers = execFileSync('ps', ['-o', 'pid=', '--ppid', String(node.pid)], { encoding: 'utf8' })
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0);
  if (workers.length === 0) return;
  process.kill(workers[killed++ % workers.length]!, 'SIGKILL');
}
const hup = setInterval(() => {
  if (values.mode === 'hup') node.kill('SIGHUP');
  else if (++ticks % 3 === 0) killWorker();
}, HUP_MS);
await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    while (Date.now() < end) await one();
  }),
);
clearInterval(hup);
await sleep(200);
node.kill('SIGTERM');
await new Promise((resolve) => node.once('exit', resolve));
origin.close();
rmSync(dir, { recursive: true, force: true });

const failed = [...outcome.failed].map(([why, n]) => `${why} ${n}`).join(', ') || 'none';
console.log(
  `${SECONDS} s, ${CLIENTS} clients, ${values.workers} workers (accept: ${values.accept}): ` +
    `${values.mode === 'hup' ? `${replaced} replacements` : `${killed} workers killed`}; ` +
    `${outcome.answered} answered, failed: ${failed}; never answered: ${outcome.lost}`,
);
process.exitCode = outcome.lost > 0 || outcome.failed.size > 0 ? 1 : 0;
