/**
 * A real nats-server with JetStream for the fleet tests: loopback, a random port, a temp store
 * directory. `stop()` and `start()` again (same port, same store) stand for a bus outage.
 * Tests skip with a message when nats-server is not installed (.ci/run installs it).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Undefined when nats-server runs here, else why the fleet tests are skipped. */
export function natsMissing(): string | undefined {
  const probe = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (probe.error === undefined && probe.status === 0) return undefined;
  return 'nats-server is not installed (apt-get install nats-server): fleet bus tests skipped';
}

export interface TestNats {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Stops the server (its store stays). */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Stops it and removes the store. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

function launch(dir: string, port: number, config?: string): Promise<{ child: ChildProcess; port: number }> {
  const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir];
  if (config !== undefined) args.push('-c', config);
  const child = spawn('nats-server', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server did not start within ${START_TIMEOUT_MS} ms:\n${text}`));
    }, START_TIMEOUT_MS);
    child.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const listening = /Listening for client connections on [^\s]+:(\d+)/.exec(text);
      if (listening && text.includes('Server is ready')) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ child, port: Number(listening[1]) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code}):\n${text}`));
    });
  });
}

/**
 * `maxPayload`: the server's max_payload in bytes (NATS's default is 1 MiB); `token`: clients must
 * give it; `conf`: more lines of the server's configuration file (users and their permissions).
 */
export async function startNats(
  options: { maxPayload?: number; token?: string; conf?: string } = {},
): Promise<TestNats> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-nats-'));
  let config: string | undefined;
  if (options.maxPayload !== undefined || options.token !== undefined || options.conf !== undefined) {
    config = join(dir, 'nats.conf');
    const lines = [
      ...(options.maxPayload !== undefined ? [`max_payload: ${options.maxPayload}`] : []),
      ...(options.token !== undefined ? [`authorization { token: "${options.token}" }`] : []),
      ...(options.conf !== undefined ? [options.conf] : []),
    ];
    writeFileSync(config, `${lines.join('\n')}\n`);
  }
  let { child, port } = await launch(dir, -1, config);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    stop,
    async start() {
      ({ child, port } = await launch(dir, port, config));
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
