/**
 * Publishes the purges this node accepted (admin API, CLI, an offline purge of its cache
 * directory) to the stream, in purge-log order. The bus is a peer of the purge log: its
 * cursor (`purgePeer:nats:<stream>`) is the last sequence the stream acknowledged, persisted,
 * so a purge accepted while the bus is down stays in the log and is published when it
 * returns, after a restart too. Purges that came from elsewhere (a peer, the bus itself:
 * their path names a node) are not published again.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { FleetConfig } from '../config/fleet-schema.ts';
import { backoff, Pause } from '../purge/pause.ts';
import type { PurgeLog } from '../purge/purge-log.ts';
import { type BusPurge, busMessageId, encodeBusPurge, splitBusPurge } from './message.ts';

export interface BusPublisherOptions {
  fleet: FleetConfig;
  log: PurgeLog;
  nodeId: string;
  logger: Logger;
  /** Wait after a failed publish, doubling up to `max` (purge.retry). */
  retry: { initial: number; max: number };
  onPublished?: (count: number) => void;
}

/** Purges published at once (their acknowledgements awaited together). */
const BATCH = 100;
/** A caught-up publisher looks for purges appended by other processes this often. */
const POLL_MS = 1000;
/** NATS's default max_payload, when the server has not said its own. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left in a message for JetStream's headers (message id, expected stream). */
const HEADER_ROOM = 1024;

export class BusPublisher {
  readonly #options: BusPublisherOptions;
  readonly #peer: string;
  #delivered: number;
  #js: JetStreamClient | undefined;
  #maxPayload: () => number = () => DEFAULT_MAX_PAYLOAD;
  #stopped = false;
  #loop: Promise<void> | undefined;
  readonly #pause = new Pause();
  #failures = 0;
  published = 0;
  lastError: string | undefined;

  constructor(options: BusPublisherOptions) {
    this.#options = options;
    this.#peer = `nats:${options.fleet.stream}`;
    const { log } = options;
    // The bus newly configured: purges accepted before it are not published.
    let delivered = log.delivered(this.#peer);
    if (delivered === undefined) {
      delivered = log.sequence;
      void log.setDelivered(this.#peer, delivered);
    }
    this.#delivered = delivered;
  }

  /** The last purge-log sequence the stream has (the log keeps everything after it). */
  get delivered(): number {
    return this.#delivered;
  }

  /** Purges in the log not yet handed to the stream (some need not be: they came from elsewhere). */
  get pending(): number {
    return Math.max(0, this.#options.log.sequence - this.#delivered);
  }

  /**
   * `maxPayload`: the largest message the server takes (its max_payload, headers included),
   * read when publishing; a purge larger than it goes in parts (message.ts).
   */
  start(js: JetStreamClient, maxPayload: () => number = () => DEFAULT_MAX_PAYLOAD): void {
    this.#js = js;
    this.#maxPayload = maxPayload;
    this.#loop ??= this.#run().catch((error: unknown) =>
      this.#options.logger.error({ err: error }, 'purge bus publisher stopped'),
    );
  }

  /** A purge was appended (or the bus came back): publish now rather than at the next poll. */
  wake(): void {
    this.#pause.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pause.wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { log } = this.#options;
    while (!this.#stopped) {
      const batch = log.after(this.#delivered, BATCH);
      if (batch.length === 0) {
        await this.#sleep(POLL_MS);
        continue;
      }
      const ok = await this.#publish(batch);
      if (ok) {
        this.#failures = 0;
        this.lastError = undefined;
        this.#delivered = batch.at(-1)!.sequence;
        await log.setDelivered(this.#peer, this.#delivered);
      } else {
        this.#failures++;
        await this.#sleep(backoff(this.#options.retry, this.#failures));
      }
    }
  }

  async #publish(batch: ReturnType<PurgeLog['after']>): Promise<boolean> {
    const { fleet, nodeId, logger } = this.#options;
    const js = this.#js!;
    const own = batch.filter(({ entry }) => entry.path.length === 0);
    const limit = Math.max(4096, this.#maxPayload() - HEADER_ROOM);
    try {
      await Promise.all(
        own.flatMap(({ sequence, entry }) => {
          const purge: BusPurge = { v: 1, node: nodeId, sequence, command: entry.command, at: entry.at };
          return splitBusPurge(purge, limit).map((part, index) =>
            js.publish(fleet.subject, encodeBusPurge(part), {
              msgID: busMessageId(part, index),
              expect: { streamName: fleet.stream },
            }),
          );
        }),
      );
      this.published += own.length;
      if (own.length > 0) this.#options.onPublished?.(own.length);
      return true;
    } catch (error) {
      this.lastError = (error as Error).message;
      // The first failure and every tenth after it: a bus down for hours does not flood the log.
      if (this.#failures % 10 === 0 && !this.#stopped)
        logger.warn(
          { err: this.lastError, from: batch[0]!.sequence, failures: this.#failures + 1 },
          'publishing purges to the bus failed; they stay in the purge log and will be published later',
        );
      return false;
    }
  }

  #sleep(ms: number): Promise<void> {
    return this.#stopped ? Promise.resolve() : this.#pause.sleep(ms);
  }
}
