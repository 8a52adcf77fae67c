/**
 * Child processes of a conformance run: each is started in its own process group, its output is
 * kept (bounded) for the report, and every one is ended by its id when the run ends, fails or is
 * interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

const OUTPUT_LINES_KEPT = 400;
/** A file that gets every line of every child, prefixed with its name (STRATA_CONFORMANCE_LOG). */
const LOG_FILE = process.env.STRATA_CONFORMANCE_LOG;
const STOP_GRACE_MS = 3000;

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** The last lines the child wrote (stdout and stderr), oldest first. */
  readonly output: string[];
  /** Resolves with the exit code (or the signal name) once the child has exited. */
  readonly exited: Promise<number | string>;
  /** False once the child has exited. */
  readonly alive: boolean;
  /** Resolves with the first line matching `pattern`, rejects after `timeoutMs` or on exit. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** SIGTERM to the child's group, SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>;
}

const live = new Map<number, ChildProcess>();

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export interface StartOptions {
  env?: Record<string, string>;
  cwd?: string;
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: StartOptions = {},
): ChildHandle {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${command}`);
  live.set(pid, child);

  const output: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const onLine = (line: string): void => {
    output.push(line);
    if (LOG_FILE !== undefined) appendFileSync(LOG_FILE, `${name} ${line}\n`);
    if (output.length > OUTPUT_LINES_KEPT) output.shift();
    for (const waiter of waiters) {
      if (waiter.pattern.test(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    stream.on('end', () => {
      if (pending) onLine(pending);
      pending = '';
    });
  }

  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(pid);
      resolve(code ?? signal ?? 'unknown');
    });
  });

  return {
    name,
    pid,
    output,
    exited,
    get alive() {
      return live.has(pid);
    },
    waitForLine(pattern, timeoutMs) {
      const already = output.find((line) => pattern.test(line));
      if (already !== undefined) return Promise.resolve(already);
      return new Promise<string>((resolve, reject) => {
        const waiter = { pattern, resolve: (line: string) => finish(() => resolve(line)) };
        const timer = setTimeout(
          () =>
            finish(() => reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms`))),
          timeoutMs,
        );
        const onExit = (): void =>
          finish(() => reject(new Error(`${name} exited before printing a line matching ${pattern}`)));
        child.once('exit', onExit);
        function finish(action: () => void): void {
          clearTimeout(timer);
          waiters.delete(waiter);
          child.off('exit', onExit);
          action();
        }
        waiters.add(waiter);
      });
    },
    async stop() {
      if (!live.has(pid)) return;
      signalGroup(pid, 'SIGTERM');
      const killer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(killer);
      // Workers of the child (its process group) go with it.
      signalGroup(pid, 'SIGKILL');
    },
  };
}

const exitTasks: Array<() => void> = [];

/** A synchronous task for the end of the run, however it ends (e.g. removing temp dirs). */
export function atExit(task: () => void): void {
  exitTasks.push(task);
}

/** Ends every child still running and runs the exit tasks, synchronously (safe in an 'exit' handler). */
export function killAllNow(): void {
  for (const pid of live.keys()) signalGroup(pid, 'SIGKILL');
  live.clear();
  for (const task of exitTasks.splice(0)) {
    try {
      task();
    } catch {
      // best effort at exit
    }
  }
}

let installed = false;

/** Makes sure no child outlives the run, whatever way the run ends. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      console.error(`conformance run interrupted by ${signal}`);
      killAllNow();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    console.error(error);
    killAllNow();
    process.exit(1);
  });
}
