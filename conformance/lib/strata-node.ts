/**
 * Starts `strata serve` as a child process on loopback ports with its own cache directory, and
 * stops it by its process id. A node can be restarted on the same ports and directory.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, LOOPBACK, waitForPort } from './net.ts';
import { type ChildHandle, startChild } from './processes.ts';

/** The CLI under test; STRATA_CLI points the runner at another build of it. */
export const STRATA_CLI = process.env.STRATA_CLI ?? join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const READY_TIMEOUT_MS = 20_000;
/** Starts on freshly chosen ports before a port taken meanwhile is an error (start). */
const PORT_ATTEMPTS = 3;
/** Bearer token of the admin API of every node the runner starts (loopback only). */
export const ADMIN_TOKEN = 'conformance-admin-token';

export interface StrataNodeOptions {
  /** Used in logs, in Via and as the Cache-Status cache name (distinct per tier). */
  name: string;
  originUrl: string;
  cacheDir: string;
  /** A folder for the node's config file. */
  workDir: string;
  workers?: number;
}

export class StrataNode {
  readonly options: StrataNodeOptions;
  port = 0;
  adminPort = 0;
  #child: ChildHandle | undefined;

  constructor(options: StrataNodeOptions) {
    this.options = options;
  }

  get url(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  get adminUrl(): string {
    return `http://${LOOPBACK}:${this.adminPort}`;
  }

  /** False once the node has exited (or before it started). */
  get alive(): boolean {
    return this.#child?.alive ?? false;
  }

  /** What the node printed lately, for failure reports. */
  get output(): string[] {
    return this.#child?.output ?? [];
  }

  /**
   * Starts the node. Ports it chose itself (0 before) were free a moment before the node binds
   * them, and another process may take one meanwhile: the node then exits with "address already
   * in use", and is started again on other free ports (at most PORT_ATTEMPTS times). Ports it
   * had (a restart) are kept.
   */
  async start(): Promise<void> {
    const choosing = { port: this.port === 0, admin: this.adminPort === 0 };
    for (let attempt = 1; ; attempt++) {
      if (choosing.port) this.port = await freePort();
      if (choosing.admin) this.adminPort = await freePort();
      try {
        return await this.#launch();
      } catch (error) {
        const taken = (error as Error).message.includes('address already in use');
        if (!taken || !(choosing.port || choosing.admin) || attempt >= PORT_ATTEMPTS) throw error;
      }
    }
  }

  async #launch(): Promise<void> {
    const { name, originUrl, cacheDir, workDir, workers } = this.options;
    const configFile = join(workDir, `${name}.json`);
    const config: Record<string, unknown> = {
      admin: { listen: `${LOOPBACK}:${this.adminPort}`, token: ADMIN_TOKEN },
      proxy: { via: name },
      // With STRATA_CONFORMANCE_LOG set, the access log too (every request's status and outcome).
      logging:
        process.env.STRATA_CONFORMANCE_LOG === undefined
          ? { level: 'warn', access: false }
          : { level: 'info', access: true },
    };
    if (workers !== undefined) config.workers = workers;
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const args = [
      STRATA_CLI,
      'serve',
      '--config',
      configFile,
      '--listen',
      `${LOOPBACK}:${this.port}`,
      '--origin',
      originUrl,
      '--cache-dir',
      cacheDir,
    ];
    const child = startChild(`strata:${name}`, process.execPath, args, {
      env: { STRATA_ADMIN_LISTEN: `${LOOPBACK}:${this.adminPort}` },
    });
    this.#child = child;
    try {
      await waitForPort(this.port, READY_TIMEOUT_MS, child.exited);
    } catch (error) {
      await child.stop();
      const tail = child.output.slice(-20).join('\n');
      throw new Error(`strata node ${name} did not start: ${(error as Error).message}\n${tail}`);
    }
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
