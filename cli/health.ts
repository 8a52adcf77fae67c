/**
 * strata healthcheck [--config FILE]: exit 0 when the node answers `GET /healthz` on the admin
 * listener its configuration names (STRATA_CONFIG and STRATA_* as serve reads them), 1 otherwise.
 * The container image's HEALTHCHECK, so the check follows the configuration's admin address. A
 * node with the admin listener disabled is checked by a TCP connection to its first listener.
 */
import { connect } from 'node:net';
import type { Command } from 'commander';
import { loadConfig } from '../src/index.ts';
import { fetchFailure, run } from './admin-client.ts';

const TIMEOUT_MS = 3_000;

/** An address bound to every interface is reached on loopback from inside the same host. */
function reachable(listen: string): { host: string; port: number } {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(listen);
  const host = match?.[1] ?? '127.0.0.1';
  const port = Number(match?.[2] ?? 0);
  if (host === '0.0.0.0' || host === '' || host === '*') return { host: '127.0.0.1', port };
  if (host === '::') return { host: '::1', port };
  return { host, port };
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: TIMEOUT_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

async function healthcheck(flags: { config?: string }): Promise<number> {
  const file = flags.config ?? process.env.STRATA_CONFIG;
  const config = loadConfig({ ...(file ? { file } : {}), env: process.env });
  if (!config.admin.enabled) {
    const { host, port } = reachable(config.listeners[0]!.listen);
    const ok = await tcpOpen(host, port);
    process.stdout.write(
      ok ? `listener ${host}:${port} accepts connections\n` : `listener ${host}:${port} refuses\n`,
    );
    return ok ? 0 : 1;
  }
  const { host, port } = reachable(config.admin.listen);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = await response.text();
    process.stdout.write(`${url}: ${response.status} ${body.trim()}\n`);
    return response.ok ? 0 : 1;
  } catch (error) {
    process.stdout.write(`${url}: ${fetchFailure(error)} (is the node running, with this admin listener?)\n`);
    return 1;
  }
}

export function registerHealth(program: Command): void {
  program
    .command('healthcheck')
    .description(
      "exit 0 when the node answers /healthz on its configuration's admin listener (the container HEALTHCHECK)",
    )
    .option('--config <file>', 'config file (default STRATA_CONFIG)')
    .action((flags: { config?: string }) => run(() => healthcheck(flags)));
}
