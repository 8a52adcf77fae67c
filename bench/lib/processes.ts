/**
 * Starting and stopping the processes a scenario runs. Every process started here is recorded
 * and stopped by PID (SIGTERM, then SIGKILL for it and the descendants it had) by `stopAll()`,
 * which run.ts calls after every scenario and on every exit path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantsOf, isAlive } from './proc-stats.ts';

export interface Started {
  name: string;
  pid: number;
  child: ChildProcess;
  logPath: string | null;
  exited: Promise<number | null>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  /** CPU list for taskset (`'0'`, `'0,1'`), or null to run unpinned. */
  cores: string | null;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** File that receives stdout and stderr; null discards both. */
  logPath?: string | null;
}

const running = new Map<number, Started>();

const SEARCH_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Finds an executable on PATH (and the sbin folders, where Debian puts nginx and varnishd). */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...SEARCH_DIRS];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const tasksetPath = which('taskset');

/** Core layout: the process under test on core 0, the load generator on core 1. */
export const PINNING =
  tasksetPath !== null && availableParallelism() >= 2
    ? { target: '0', generator: '1', all: '0,1', label: 'taskset: server on core 0, generator on core 1' }
    : { target: null, generator: null, all: null, label: 'unpinned (taskset or a second core missing)' };

function withCores(cores: string | null, command: string, args: string[]): [string, string[]] {
  if (cores === null || tasksetPath === null) return [command, args];
  return [tasksetPath, ['-c', cores, command, ...args]];
}

/** Starts a long-running process and records it for `stopAll()`. */
export function startProcess(options: StartOptions): Started {
  const [command, args] = withCores(options.cores, options.command, options.args);
  const logPath = options.logPath ?? null;
  const fd = logPath === null ? null : openSync(logPath, 'a');
  const output = fd ?? 'ignore';
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', output, output],
  });
  if (fd !== null) closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${command})`);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : 128)));
    child.once('error', () => resolve(null));
  });
  const started: Started = { name: options.name, pid: child.pid, child, logPath, exited };
  running.set(child.pid, started);
  void exited.then(() => running.delete(started.pid));
  return started;
}

/** Stops one process by PID: SIGTERM, then after the grace period SIGKILL it and its descendants. */
export async function stopProcess(started: Started, graceMs = 5000): Promise<void> {
  const family = [started.pid, ...descendantsOf(started.pid)];
  signal(started.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && family.some(isAlive)) await sleep(50);
  for (const pid of family) if (isAlive(pid)) signal(pid, 'SIGKILL');
  await Promise.race([started.exited, sleep(1000)]);
  running.delete(started.pid);
}

/** Stops every process still recorded. Safe to call more than once. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running.values()].map((started) => stopProcess(started)));
}

/** Synchronous last resort for process exit handlers: SIGKILL every recorded process by PID. */
export function killAllNow(): void {
  for (const started of running.values()) {
    for (const pid of [...descendantsOf(started.pid), started.pid]) signal(pid, 'SIGKILL');
  }
  running.clear();
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

export interface CaptureOptions {
  name: string;
  command: string;
  args: string[];
  cores: string | null;
  cwd?: string;
  timeoutMs: number;
  /** Told the PID as soon as the command runs (to follow its CPU time). */
  onSpawn?: (pid: number) => void;
}

export interface Captured {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a bounded command to completion and returns its output; killed by PID at the timeout. */
export async function capture(options: CaptureOptions): Promise<Captured> {
  const [command, args] = withCores(options.cores, options.command, options.args);
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) signal(child.pid, 'SIGKILL');
  }, options.timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.once('close', (exitCode) => resolve(exitCode));
    child.once('error', () => resolve(null));
  });
  clearTimeout(timer);
  return {
    code,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    timedOut,
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function connectOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until the process accepts TCP connections on the port; throws with its log tail otherwise. */
export async function waitForPort(started: Started, port: number, timeoutMs = 15000): Promise<void> {
  let done = false;
  void started.exited.then(() => {
    done = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (done) throw new Error(`${started.name} exited before listening on ${port}${logTail(started)}`);
    if (await connectOnce(port)) return;
    await sleep(100);
  }
  throw new Error(`${started.name} did not listen on ${port} within ${timeoutMs} ms${logTail(started)}`);
}

/** The last lines of a process's log, for error messages. */
export function logTail(started: Started, lines = 15): string {
  if (started.logPath === null) return '';
  try {
    const text = readFileSync(started.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    return text === '' ? '' : `\n--- ${started.logPath} (tail) ---\n${text}`;
  } catch {
    return '';
  }
}
