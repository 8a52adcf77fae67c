/**
 * Request collapsing across workers: the same table the pipeline uses in one process
 * (in-process followers read the leader's fill as it arrives), plus a node-wide lock kept by
 * the primary (lock-broker.ts). A local leader claims the key from the primary before it
 * fetches. When another worker already leads:
 *
 * - once that worker's response turns out storable (with a Content-Length), it announces the
 *   fill and reports each chunk as it commits; the waiting worker settles its local pending
 *   key with a fill read from LMDB (`Fill.writtenElsewhere`), and its local leader looks
 *   again and joins it like any follower: read-while-writer across workers, no body over IPC;
 * - otherwise (no fill announced: uncacheable, failed, no Content-Length) it waits for the
 *   other worker to finish and looks the key up again, as the verdicts say;
 * - when the leading worker exits mid-fill, the primary ends the fill as failed and says so
 *   ('exited'): a follower that has sent its client nothing yet asks again (it leads a new
 *   fetch, or follows the request that does); one that has is cut short.
 *
 * The leading side: the outcome the pipeline settles with carries the fill; this table
 * announces it, relays its commits, and says at release whether its whole body is in LMDB.
 */
import { CollapseTable, type LeaderOutcome, type NodeClaim } from '../cache/collapse.ts';
import { Fill } from '../cache/fill.ts';
import type { StoredFreshness } from '../cache/policy/reuse.ts';
import type { CacheStore } from '../cache/store.ts';
import type { FillMessage, LockMessage, LockVerdict, ReleaseMessage, WorkerMessage } from './protocol.ts';
import { isStrataMessage, sendToPrimary } from './protocol.ts';

/** The IPC channel to the primary (process in a worker; a fake in tests). */
export interface LockChannel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: LockMessage) => void): void;
  readonly connected: boolean;
}

/** 'reading': another worker's fill was handed to the local followers. */
type Answer = LockVerdict | 'timeout' | 'reading';

/** This process's leader of a key: its settle function and the leadership it settles. */
interface LocalLeader {
  settle: (outcome: LeaderOutcome) => void;
  outcome: Promise<LeaderOutcome>;
  /** Not settled yet. */
  live: boolean;
}

interface Asking {
  key: string;
  /** The local leader that asked (a purge may have put another in its place since). */
  leader: LocalLeader | undefined;
  answer: (answer: Answer) => void;
}

/** Another worker's fill, read here. */
interface Reading {
  key: string;
  fill: Fill;
  outcome: Promise<LeaderOutcome>;
  ended: () => void;
}

const LOOK_AGAIN: NodeClaim = { kind: 'look-again' };
/** The other worker's leader was refused (its client's answer): fetch on your own, stored. */
const REFUSED = { kind: 'refused' } as const;

export class ClusterCollapseTable extends CollapseTable {
  readonly #channel: LockChannel;
  /** How long a local leader waits for the node-wide lock before it fetches unstored. */
  timeoutMs: number;
  #store: CacheStore | undefined;
  #nextId = 1;
  /** Claims waiting for the primary's verdict, by request id. */
  readonly #asking = new Map<number, Asking>();
  /**
   * Leaderships holding the node-wide lock of their key → the request id it was granted under
   * (by leadership, not key: after a purge a key may have an old leadership still filling and
   * a new one).
   */
  readonly #held = new Map<Promise<LeaderOutcome>, number>();
  /** The local leaders, so a node verdict can settle local followers. */
  readonly #leaders = new Map<string, LocalLeader>();
  /** Other workers' fills read here, by request id. */
  readonly #reading = new Map<number, Reading>();
  /**
   * Leaderships another worker waits for (the primary's 'hurry'): this process's commits go at
   * once until the leadership ends (the release of the store's hold).
   */
  readonly #hurried = new Map<Promise<LeaderOutcome>, () => void>();
  /** Fills this process announced, by leadership (while it holds the key's lock). */
  readonly #announced = new Map<Promise<LeaderOutcome>, Fill>();

  constructor(hitForPassMs: number, now: () => number, channel: LockChannel, timeoutMs: number) {
    super(hitForPassMs, now);
    this.#channel = channel;
    this.timeoutMs = timeoutMs;
    channel.onMessage((message) => this.#receive(message));
  }

  /** The store other workers' fills are read from (set once the node is open). */
  attach(store: CacheStore): void {
    this.#store = store;
  }

  override lead(key: string): (outcome: LeaderOutcome) => void {
    const settle = super.lead(key);
    const outcome = this.pending(key)!.outcome;
    const leader: LocalLeader = { settle: () => {}, outcome, live: true };
    leader.settle = (result: LeaderOutcome): void => {
      if (!leader.live) return;
      leader.live = false;
      if (this.#leaders.get(key) === leader) this.#leaders.delete(key);
      settle(result);
      if (result.kind === 'shared') this.#announce(outcome, result);
      else
        this.#unlock(
          outcome,
          result.kind === 'uncacheable' || result.kind === 'refused'
            ? result.kind
            : result.kind === 'look-again'
              ? 'done'
              : 'failed',
        );
    };
    this.#leaders.set(key, leader);
    return leader.settle;
  }

  override claim(key: string, wait: boolean): Promise<NodeClaim> {
    if (!this.#channel.connected) return Promise.resolve({ kind: 'lead' });
    const id = this.#nextId++;
    const leader = this.#leaders.get(key);
    const answer = new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        this.#asking.delete(id);
        this.#send({ strata: 'cancel', id });
        resolve('timeout');
      }, this.timeoutMs);
      this.#asking.set(id, {
        key,
        leader,
        answer: (verdict) => {
          clearTimeout(timer);
          this.#asking.delete(id);
          // Held from the verdict on: the primary's next message may already be about it (a
          // 'hurry' in the same read, before the claim's continuation runs).
          if (verdict === 'lead' && leader !== undefined) this.#held.set(leader.outcome, id);
          resolve(verdict);
        },
      });
    });
    this.#send({ strata: 'acquire', id, key, wait });
    return answer.then((verdict) => this.#decide(leader, id, verdict));
  }

  override release(key: string, outcome: Promise<LeaderOutcome> | undefined): void {
    const before = this.pending(key);
    super.release(key, outcome);
    // The leadership's fill ended (its key may have been unlisted by a purge meanwhile).
    if (outcome !== undefined) this.#unlock(outcome, 'done');
    else if (before !== undefined && this.pending(key) === undefined) this.#unlock(before.outcome, 'done');
  }

  /** Node-wide claims waiting for a verdict (for leak checks). */
  get asking(): number {
    return this.#asking.size;
  }

  /** Other workers' fills being read here (for leak checks). */
  get reading(): number {
    return this.#reading.size;
  }

  #receive(message: LockMessage): void {
    switch (message.strata) {
      case 'verdict':
        // What the other worker committed must be seen by the lookup that follows.
        if (message.verdict === 'look-again' || message.verdict === 'failed') this.#store?.resetReadTxn();
        return this.#asking.get(message.id)?.answer(message.verdict);
      case 'fill':
        return this.#startReading(message);
      case 'committed':
        return this.#reading.get(message.id)?.fill.committedElsewhere(message.committed);
      case 'fill-end':
        return this.#endReading(message.id, message.chunks, message.exited === true);
      case 'purge-fills':
        this.purgeFills(message.purge);
        return;
      case 'hurry':
        return this.#hurry(message.id);
    }
  }

  /**
   * Another worker leads and stores: the local followers (and the local leader, which looks
   * again) read its fill from LMDB, chunk by chunk as it commits.
   */
  #startReading(message: FillMessage): void {
    const asking = this.#asking.get(message.id);
    if (asking === undefined) return; // gave up waiting; the primary has its cancel
    const local = asking.leader;
    const store = this.#store;
    if (local === undefined || !local.live || store === undefined) {
      this.#send({ strata: 'cancel', id: message.id });
      return asking.answer('look-again');
    }
    const announced = message.fill;
    const fill = Fill.writtenElsewhere(store, announced.bodyId, message.committed);
    let ended!: () => void;
    const done = new Promise<void>((resolve) => {
      ended = resolve;
    });
    this.#reading.set(message.id, { key: asking.key, fill, outcome: local.outcome, ended });
    local.settle({
      kind: 'shared',
      fill,
      status: announced.status,
      headers: announced.headers,
      vary: announced.vary,
      secondaryKey: announced.secondaryKey,
      record: announced.freshness,
      ...(announced.tags === undefined ? {} : { tags: announced.tags }),
      done,
    });
    asking.answer('reading');
  }

  #endReading(id: number, chunks: number | undefined, exited: boolean): void {
    const reading = this.#reading.get(id);
    if (reading === undefined) return;
    this.#reading.delete(id);
    // The record came with the last chunk: lookups from here on must see it.
    this.#store?.resetReadTxn();
    // Unlisted first: a reader that asks again as the fill ends (its writer exited) must not
    // find the ended fill pending, but lead or follow a new one.
    super.release(reading.key, reading.outcome);
    reading.fill.endedElsewhere(chunks, exited);
    reading.ended();
  }

  #decide(leader: LocalLeader | undefined, id: number, verdict: Answer): NodeClaim {
    if (verdict === 'lead') {
      if (leader !== undefined) this.#held.set(leader.outcome, id);
      return { kind: 'lead' };
    }
    // The local followers have the other worker's fill; the local leader joins them.
    if (verdict === 'reading') return LOOK_AGAIN;
    const settle = leader?.settle;
    if (verdict === 'uncacheable') {
      settle?.({ kind: 'uncacheable' });
      return { kind: 'uncacheable' };
    }
    if (verdict === 'refused') {
      settle?.(REFUSED);
      return REFUSED;
    }
    if (verdict === 'timeout') {
      settle?.({ kind: 'timeout' });
      return { kind: 'timeout' };
    }
    // A failed leadership elsewhere counts toward the key's failures in a row; an ended one
    // (or a background revalidation running elsewhere) just has the followers look again.
    settle?.(verdict === 'failed' ? { kind: 'failed' } : { kind: 'look-again' });
    return LOOK_AGAIN;
  }

  /**
   * The local leader's response is being stored: other workers waiting for the key may read
   * its chunks as they commit. Only with a Content-Length: a body of unknown length may turn
   * out too large to store midway, and readers elsewhere (who have no copy in memory) would
   * be cut short; they wait for the end instead.
   */
  #announce(leadership: Promise<LeaderOutcome>, outcome: Extract<LeaderOutcome, { kind: 'shared' }>): void {
    const id = this.#held.get(leadership);
    const fill = outcome.fill;
    const bodyId = fill.bodyId;
    // A body scanned for reflected request values is never read elsewhere as it streams either.
    if (
      id === undefined ||
      bodyId === undefined ||
      !fill.storing ||
      outcome.scanned === true ||
      !hasContentLength(outcome.headers)
    )
      return;
    this.#announced.set(leadership, fill);
    this.#send({
      strata: 'announce',
      id,
      committed: fill.committedCount,
      fill: {
        bodyId,
        status: outcome.status,
        headers: outcome.headers,
        vary: outcome.vary,
        secondaryKey: outcome.secondaryKey,
        freshness: freshnessOf(outcome.record),
        ...(outcome.tags === undefined ? {} : { tags: outcome.tags }),
      },
    });
    fill.onCommitted((committed) => {
      if (this.#held.get(leadership) === id) this.#send({ strata: 'committed', id, committed });
    });
  }

  /** Another worker waits for the key that request `id` holds: commit at once until it ends. */
  #hurry(id: number): void {
    const store = this.#store;
    if (store === undefined) return;
    for (const [leadership, held] of this.#held) {
      if (held !== id || this.#hurried.has(leadership)) continue;
      this.#hurried.set(leadership, store.holdCommits());
      return;
    }
  }

  #unlock(leadership: Promise<LeaderOutcome>, result: ReleaseMessage['result']): void {
    const id = this.#held.get(leadership);
    if (id === undefined) return;
    this.#held.delete(leadership);
    this.#hurried.get(leadership)?.();
    this.#hurried.delete(leadership);
    const fill = this.#announced.get(leadership);
    this.#announced.delete(leadership);
    const chunks = result === 'done' ? fill?.completeChunks : undefined;
    this.#send({ strata: 'release', id, result, ...(chunks === undefined ? {} : { chunks }) });
  }

  #send(message: WorkerMessage): void {
    if (this.#channel.connected) this.#channel.send(message);
  }
}

function hasContentLength(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === 'content-length') return true;
  return false;
}

/** Just the freshness numbers (the outcome's record is a whole entry record). */
function freshnessOf(record: StoredFreshness): StoredFreshness {
  const { lifetime, responseTime, initialAge, swr, sie, noStale, noCache, invalidated, source } = record;
  const numbers: StoredFreshness = {
    lifetime,
    responseTime,
    initialAge,
    swr,
    sie,
    noStale,
    noCache,
    invalidated,
  };
  if (record.invalidatedAge !== undefined) numbers.invalidatedAge = record.invalidatedAge;
  if (source !== undefined) numbers.source = source;
  return numbers;
}

/** The worker's channel: process IPC to the primary. */
export function processChannel(): LockChannel {
  return {
    send: sendToPrimary,
    onMessage: (listener) => {
      process.on('message', (message: unknown) => {
        if (!isStrataMessage<LockMessage>(message)) return;
        const type = message.strata;
        if (
          type === 'verdict' ||
          type === 'fill' ||
          type === 'committed' ||
          type === 'fill-end' ||
          type === 'purge-fills' ||
          type === 'hurry'
        )
          listener(message);
      });
    },
    get connected() {
      return process.connected === true;
    },
  };
}
