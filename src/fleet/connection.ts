/**
 * The node's one connection to the NATS servers. It is opened in the background and retried for
 * ever (the node serves whether or not the bus is there), and reconnects by itself after a
 * server restart; `connected` says whether it is up now.
 */
import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { FleetConfig } from '../config/fleet-schema.ts';

/** Connection options for the configured servers, credentials and TLS. */
export function connectionOptions(config: FleetConfig['nats'], name: string): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: config.servers,
    name,
    // Once connected the client reconnects for ever; the first connection is retried by
    // BusConnection (so closing the node never waits on a connect in progress).
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    timeout: 5000,
    pingInterval: 10_000,
  };
  if (config.token !== undefined) options.token = config.token;
  if (config.user !== undefined) {
    options.user = config.user;
    options.pass = config.password;
  }
  if (config.credentials !== undefined)
    options.authenticator = credsAuthenticator(readFileSync(config.credentials));
  if (config.tls !== undefined) {
    options.tls = {
      ...(config.tls.ca ? { caFile: config.tls.ca } : {}),
      ...(config.tls.cert ? { certFile: config.tls.cert } : {}),
      ...(config.tls.key ? { keyFile: config.tls.key } : {}),
    };
  }
  return options;
}

/** Wait between two attempts at the first connection. */
const RETRY_MS = 1000;

export class BusConnection {
  readonly #options: NodeConnectionOptions;
  readonly #log: Logger;
  #nc: NatsConnection | undefined;
  #connected = false;
  #closed = false;
  #retry: (() => void) | undefined;
  readonly #opened: Promise<NatsConnection | undefined>;
  readonly #listeners = new Set<(up: boolean) => void>();

  constructor(options: NodeConnectionOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.#opened = this.#open();
  }

  /** Resolves with the connection once it is first up (undefined if closed before). */
  get opened(): Promise<NatsConnection | undefined> {
    return this.#opened;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Told whenever the connection goes up or down. */
  onChange(listener: (up: boolean) => void): void {
    this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#retry?.();
    const nc = this.#nc;
    if (nc === undefined) return;
    await nc.close().catch(() => {});
  }

  #set(up: boolean): void {
    if (this.#connected === up) return;
    this.#connected = up;
    for (const listener of this.#listeners) listener(up);
  }

  /** Why the last attempt to connect failed (an authorization refused, no server): for readiness. */
  lastError: string | undefined;

  async #open(): Promise<NatsConnection | undefined> {
    // No server reachable, a refused authorization: tried again after a pause.
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        const nc = await connect(this.#options);
        if (this.#closed) {
          await nc.close();
          return undefined;
        }
        this.#nc = nc;
        this.#set(true);
        this.#log.info({ server: nc.getServer() }, 'purge bus connected');
        void this.#watch(nc);
        return nc;
      } catch (error) {
        this.lastError = (error as Error).message;
        if (attempt === 1 || attempt % 10 === 0)
          this.#log.warn({ err: error, attempt }, 'purge bus connection failed; will retry');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RETRY_MS);
          this.#retry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    return undefined;
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.#set(false);
        if (!this.#closed) this.#log.warn('purge bus disconnected; reconnecting');
      } else if (status.type === 'reconnect') {
        this.#set(true);
        this.#log.info({ server: nc.getServer() }, 'purge bus reconnected');
      }
    }
    this.#set(false);
  }
}
