/**
 * Request collapsing across workers: the same table the pipeline uses in one process
 * (in-process followers still read the leader's fill as it arrives), plus a node-wide lock
 * kept by the primary (lock-broker.ts). A local leader claims the key from the primary
 * before it fetches; when another worker already leads, the local leader and its followers
 * wait for that worker's fill to end and then look the key up again, reading the committed
 * entry from LMDB (they do not stream the other worker's chunks while they are written).
 */
import { CollapseTable, type LeaderOutcome, type NodeClaim } from '../cache/collapse.ts';
import type { LockVerdict, VerdictMessage, WorkerMessage } from './protocol.ts';
import { isStrataMessage } from './protocol.ts';

/** The IPC channel to the primary (process in a worker; a fake in tests). */
export interface LockChannel {
  send(message: WorkerMessage): void;
  onVerdict(listener: (message: VerdictMessage) => void): void;
  readonly connected: boolean;
}

type Answer = LockVerdict | 'timeout';

export class ClusterCollapseTable extends CollapseTable {
  readonly #channel: LockChannel;
  /** How long a local leader waits for the node-wide lock before it fetches unstored. */
  timeoutMs: number;
  #nextId = 1;
  /** Claims waiting for the primary's verdict, by request id. */
  readonly #asking = new Map<number, (answer: Answer) => void>();
  /** Keys whose node-wide lock this process holds → the request id it was granted under. */
  readonly #held = new Map<string, number>();
  /** The local leaders' settle functions, so a node verdict can settle local followers. */
  readonly #settles = new Map<string, (outcome: LeaderOutcome) => void>();

  constructor(hitForPassMs: number, now: () => number, channel: LockChannel, timeoutMs: number) {
    super(hitForPassMs, now);
    this.#channel = channel;
    this.timeoutMs = timeoutMs;
    channel.onVerdict((message) => this.#asking.get(message.id)?.(message.verdict));
  }

  override lead(key: string): (outcome: LeaderOutcome) => void {
    const settle = super.lead(key);
    let settled = false;
    const settleNodeWide = (outcome: LeaderOutcome): void => {
      if (settled) return;
      settled = true;
      if (this.#settles.get(key) === settleNodeWide) this.#settles.delete(key);
      settle(outcome);
      if (outcome.kind !== 'shared')
        this.#unlock(key, outcome.kind === 'uncacheable' ? 'uncacheable' : 'failed');
    };
    this.#settles.set(key, settleNodeWide);
    return settleNodeWide;
  }

  override claim(key: string, wait: boolean): Promise<NodeClaim> {
    if (!this.#channel.connected) return Promise.resolve({ kind: 'lead' });
    const id = this.#nextId++;
    const answer = new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        this.#asking.delete(id);
        this.#send({ strata: 'cancel', id });
        resolve('timeout');
      }, this.timeoutMs);
      this.#asking.set(id, (verdict) => {
        clearTimeout(timer);
        this.#asking.delete(id);
        resolve(verdict);
      });
    });
    this.#send({ strata: 'acquire', id, key, wait });
    return answer.then((verdict) => this.#decide(key, id, verdict));
  }

  override release(key: string, outcome: Promise<LeaderOutcome> | undefined): void {
    const before = this.pending(key);
    super.release(key, outcome);
    if (before !== undefined && this.pending(key) === undefined) this.#unlock(key, 'done');
  }

  /** Node-wide claims waiting for a verdict (for leak checks). */
  get asking(): number {
    return this.#asking.size;
  }

  #decide(key: string, id: number, verdict: Answer): NodeClaim {
    if (verdict === 'lead') {
      this.#held.set(key, id);
      return { kind: 'lead' };
    }
    const settle = this.#settles.get(key);
    if (verdict === 'uncacheable') {
      settle?.({ kind: 'uncacheable' });
      return { kind: 'uncacheable' };
    }
    if (verdict === 'timeout') {
      settle?.({ kind: 'timeout' });
      return { kind: 'timeout' };
    }
    settle?.({ kind: 'failed' });
    return { kind: 'look-again' };
  }

  #unlock(key: string, result: 'done' | 'failed' | 'uncacheable'): void {
    const id = this.#held.get(key);
    if (id === undefined) return;
    this.#held.delete(key);
    this.#send({ strata: 'release', id, result });
  }

  #send(message: WorkerMessage): void {
    if (this.#channel.connected) this.#channel.send(message);
  }
}

/** The worker's channel: process IPC to the primary. */
export function processChannel(): LockChannel {
  return {
    send: (message) => {
      process.send?.(message);
    },
    onVerdict: (listener) => {
      process.on('message', (message: unknown) => {
        if (isStrataMessage<VerdictMessage>(message) && message.strata === 'verdict') listener(message);
      });
    },
    get connected() {
      return process.connected === true;
    },
  };
}
