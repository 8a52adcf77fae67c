/**
 * Fan-out: every purge in the log is delivered to each configured peer (another node, a
 * child tier) through its admin API, in log order, one at a time, until the peer
 * acknowledges it. A failed delivery is retried after a wait that doubles from
 * `purge.retry.initial` up to `purge.retry.max`. The sequence each peer has acknowledged
 * is persisted in the `meta` database, so a restart of this node resumes where it
 * stopped, and a peer that was down receives everything it missed when it returns.
 */
import type { Logger } from 'pino';
import type { PurgeConfig } from '../config/schema.ts';
import { parsePurgeBody } from './command.ts';
import { backoff, Pause } from './pause.ts';
import type { LoggedPurge, PurgeLog } from './purge-log.ts';

export interface PeerState {
  url: string;
  /** Last sequence the peer acknowledged. */
  delivered: number;
  /** Purges in the log it has not acknowledged yet. */
  pending: number;
  /** Failed attempts since the last success. */
  failures: number;
  lastError: string | undefined;
  /** Clock time (ms) of the last acknowledged delivery. */
  lastDeliveredAt: number | undefined;
}

export interface FanOutOptions {
  config: PurgeConfig;
  log: PurgeLog;
  nodeId: string;
  logger: Logger;
  now: () => number;
  /** Called after each attempt (metrics). */
  onAttempt?: (peer: PeerState, ok: boolean) => void;
}

/** How often a caught-up peer looks for purges appended by other processes. */
const POLL_MS = 1000;

class PeerDelivery {
  readonly state: PeerState;
  readonly #token: string | undefined;
  readonly #options: FanOutOptions;
  #stopped = false;
  readonly #pause = new Pause();
  #loop: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(url: string, token: string | undefined, options: FanOutOptions) {
    this.#options = options;
    this.#token = token;
    const log = options.log;
    // A new peer starts at the current end of the log: it has nothing to catch up on.
    let delivered = log.delivered(url);
    if (delivered === undefined) {
      delivered = log.sequence;
      void log.setDelivered(url, delivered);
    }
    this.state = {
      url,
      delivered,
      pending: 0,
      failures: 0,
      lastError: undefined,
      lastDeliveredAt: undefined,
    };
    this.#updatePending();
  }

  start(): void {
    this.#loop ??= this.#run().catch((error: unknown) =>
      this.#options.logger.error({ err: error, peer: this.state.url }, 'purge fan-out stopped'),
    );
  }

  wake(): void {
    this.#updatePending();
    this.#pause.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#pause.wake();
    await this.#loop;
  }

  #updatePending(): void {
    this.state.pending = Math.max(0, this.#options.log.sequence - this.state.delivered);
  }

  async #run(): Promise<void> {
    const { log } = this.#options;
    while (!this.#stopped) {
      const [next] = log.after(this.state.delivered, 1);
      this.#updatePending();
      if (next === undefined) {
        if (this.state.pending > 0) {
          // Trimmed before this peer had it (it was down longer than the log kept): skip ahead.
          this.#options.logger.error(
            { peer: this.state.url, from: this.state.delivered, to: log.sequence },
            'purges trimmed from the log before this peer received them',
          );
          await this.#acknowledge(log.sequence);
          continue;
        }
        await this.#sleep(POLL_MS);
        continue;
      }
      if (next.entry.quarantined !== undefined && !parsePurgeBody(next.entry.command).ok) {
        // A quarantined purge that is not a valid command: every peer would refuse it for ever.
        this.#options.logger.error(
          { peer: this.state.url, sequence: next.sequence, reason: next.entry.quarantined },
          'quarantined purge not forwarded: it is not a valid purge command',
        );
        await this.#acknowledge(next.sequence);
        continue;
      }
      const ok = await this.#deliver(next.sequence, next.entry);
      this.#options.onAttempt?.(this.state, ok);
      if (ok) {
        this.state.failures = 0;
        this.state.lastError = undefined;
        this.state.lastDeliveredAt = this.#options.now();
        await this.#acknowledge(next.sequence);
      } else {
        this.state.failures++;
        await this.#sleep(backoff(this.#options.config.retry, this.state.failures));
      }
    }
  }

  async #acknowledge(sequence: number): Promise<void> {
    this.state.delivered = sequence;
    this.#updatePending();
    await this.#options.log.setDelivered(this.state.url, sequence);
  }

  async #deliver(sequence: number, entry: LoggedPurge): Promise<boolean> {
    const node = this.#options.nodeId;
    const body = JSON.stringify({
      ...(entry.command as object),
      // The origin travels unchanged: every node names the purge alike (the fence, docs/tiers.md).
      forwarded: {
        node,
        sequence,
        path: [...entry.path, node],
        origin: entry.origin ?? { node, sequence },
        ...(entry.covers ? { covers: entry.covers } : {}),
      },
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    try {
      const response = await fetch(new URL('purge', withSlash(this.state.url)), {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#options.config.timeout)]),
      });
      const text = await response.text();
      if (response.ok) return true;
      this.state.lastError = `HTTP ${response.status}: ${text.trim().slice(0, 200)}`;
    } catch (error) {
      this.state.lastError = describeError(error);
    }
    // The first failure and every tenth after it: a peer down for hours does not flood the log.
    if (this.state.failures % 10 === 0 && !this.#stopped) {
      this.#options.logger.warn(
        { peer: this.state.url, sequence, failures: this.state.failures + 1, err: this.state.lastError },
        'purge delivery to peer failed; will retry',
      );
    }
    return false;
  }

  #sleep(ms: number): Promise<void> {
    return this.#stopped ? Promise.resolve() : this.#pause.sleep(ms);
  }
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function describeError(error: unknown): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

export class FanOut {
  readonly #peers: PeerDelivery[];

  constructor(options: FanOutOptions) {
    this.#peers = options.config.peers.map((peer) => new PeerDelivery(peer.url, peer.token, options));
  }

  start(): void {
    for (const peer of this.#peers) peer.start();
  }

  /** A purge was appended: deliver it now rather than at the next poll. */
  wake(): void {
    for (const peer of this.#peers) peer.wake();
  }

  get peers(): PeerState[] {
    return this.#peers.map((peer) => ({ ...peer.state }));
  }

  /** The lowest sequence every peer has (the log may be trimmed up to it). */
  get lowestDelivered(): number | undefined {
    if (this.#peers.length === 0) return undefined;
    return Math.min(...this.#peers.map((peer) => peer.state.delivered));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#peers.map((peer) => peer.stop()));
  }
}
