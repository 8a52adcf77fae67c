/** `strata serve --workers 2` as a child process, for the workers tests. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { request, type TestResponse } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

export const TOKEN = 'workers-test-token-0123456789';
const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;

export interface Served {
  child: ChildProcess;
  url: string;
  /** The TLS listener's URL, when one was asked for (--listen-tls). */
  tls: string | undefined;
  admin: string;
  exited: Promise<number | null>;
}

/**
 * Starts the node with 2 workers in front of `originUrl`, its cache under `dir`: with a config
 * file (a string), sites and origins come from that file instead; with a list, extra flags.
 */
export async function serve(originUrl: string, dir: string, extra: string | string[] = []): Promise<Served> {
  const configFile = typeof extra === 'string' ? extra : undefined;
  const flags = typeof extra === 'string' ? [] : extra;
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--workers',
      '2',
      '--listen',
      '127.0.0.1:0',
      ...(configFile ? ['--config', configFile] : ['--origin', originUrl]),
      '--cache-dir',
      join(dir, 'cache'),
      '--admin-listen',
      '127.0.0.1:0',
      '--admin-token',
      TOKEN,
      '--log-level',
      'silent',
      ...flags,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
    // A node that never says it serves is stopped: left running, it kept the test file's
    // process alive after its tests failed, and the whole run waited for it.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no banner in 45 s: ${stderr}`));
    }, 45_000);
    child.stderr!.on('data', (data: Buffer) => {
      stderr += data.toString();
      const match = /serving on (http:\/\/\S+) .*admin on (http:\/\/\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    void exited.then((code) => reject(new Error(`strata exited (${code}) before serving: ${stderr}`)));
  });
  const tls = /(https:\/\/\S+)/.exec(banner[0])?.[1];
  return { child, url: banner[1]!, tls, admin: banner[2]!, exited };
}

export function workerPids(primary: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(primary)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((pid) => pid > 0);
  } catch {
    return [];
  }
}

/**
 * Sends the primary SIGHUP and waits (up to `ms`) until `count` workers run and none of those
 * before it is among them: whether they were all replaced.
 */
export async function hupAndReplaced(primary: ChildProcess, count = 2, ms = 20_000): Promise<boolean> {
  const pids = workerPids(primary.pid!);
  primary.kill('SIGHUP');
  return until(() => {
    const now = workerPids(primary.pid!);
    return now.length === count && !pids.some((pid) => now.includes(pid));
  }, ms);
}

/** `:PORT` as /proc/net/tcp writes it. */
function hexPort(port: number): string {
  return `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The socket inode of the IPv4 listener on `port` (Linux /proc/net/tcp), or undefined. */
function listenerInode(port: number): string | undefined {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address, state 0A (LISTEN), inode (10th field)
    if (fields[1]?.endsWith(hexPort(port)) && fields[3] === '0A') return fields[9];
  }
  return undefined;
}

/** Whether process `pid` holds the listening socket of `port` (node.accept: workers gives it to every worker). */
export function holdsListener(pid: number, port: number): boolean {
  const inode = listenerInode(port);
  return inode !== undefined && holdsSocket(pid, inode);
}

/**
 * Which of `pids` holds the IPv4 TCP connection whose local end is port `local` and remote end
 * port `remote` (a worker's side of a client's connection, or of its origin request).
 */
export function connectionOwner(pids: readonly number[], local: number, remote: number): number | undefined {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address, rem_address, state 01 (ESTABLISHED), inode (10th field)
    if (!fields[1]?.endsWith(hexPort(local)) || !fields[2]?.endsWith(hexPort(remote))) continue;
    if (fields[3] !== '01' || fields[9] === '0') continue;
    const inode = fields[9]!;
    return pids.find((pid) => holdsSocket(pid, inode));
  }
  return undefined;
}

function holdsSocket(pid: number, inode: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** `n` requests for `url` at once (`headers`: on each of them). */
export function many(url: string, n: number, headers: Record<string, string> = {}): Promise<TestResponse[]> {
  return Promise.all(Array.from({ length: n }, () => request(url, { headers })));
}

export { until } from '../helpers/wait.ts';
