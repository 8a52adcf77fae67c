/**
 * The durable purge log: the `purges` database, sequence number → purge command. A purge
 * is appended in the same write transaction that starts applying it and acknowledged only
 * after commit; peers are fed from it in order, and a restart finishes applying what a
 * crash interrupted. Sequences come from the `meta` counter `purgeLogSeq`, so they keep
 * growing after the log is trimmed.
 */
import { META } from '../cache/meta-keys.ts';
import type { CacheStore } from '../cache/store.ts';
import type { PurgeCommand, PurgeOrigin } from './command.ts';

export interface LoggedPurge {
  command: PurgeCommand;
  /** Clock time (ms) of the append. */
  at: number;
  /** Nodes the purge passed through before this one (ids), for loop-free forwarding. */
  path: string[];
  /**
   * The source that first accepted the purge, for a forwarded one; absent for a purge this node
   * accepted itself (its origin is this node and the purge's sequence here).
   */
  origin?: PurgeOrigin;
  /**
   * Further origins the purge stands for: the purges of other sources merged into this one (a
   * bus backlog applied as one walk). Each is recorded as applied and named by the fence.
   */
  covers?: PurgeOrigin[];
  /** True once every batch of the purge has been committed on this node (or it was quarantined). */
  applied: boolean;
  /** Why the purge could not be applied at startup, when it was set aside (quarantine.ts). */
  quarantined?: string;
}

/** A purge set aside, as /stats lists it. */
export interface QuarantinedPurge {
  sequence: number;
  purge: string;
  reason: string;
  /** Clock time (ms) it was set aside. */
  at: number;
}

const SEQUENCE = META.purgeLogSeq;
const PEER_PREFIX = META.purgePeerPrefix;
const QUARANTINE = META.purgeQuarantine;
/** Quarantined purges remembered for /stats (the newest). */
const QUARANTINE_KEPT = 100;

export class PurgeLog {
  readonly #store: CacheStore;

  constructor(store: CacheStore) {
    this.#store = store;
  }

  /** The last sequence handed out (0 before the first purge). */
  get sequence(): number {
    return (this.#store.readMeta(SEQUENCE) as number | undefined) ?? 0;
  }

  /** Inside a write transaction: appends a purge and returns its sequence. */
  appendInTxn(entry: LoggedPurge): number {
    const sequence = this.sequence + 1;
    void this.#store.writeMeta(SEQUENCE, sequence);
    this.#store.logPutInTxn(sequence, entry);
    return sequence;
  }

  /** Inside a write transaction: records that a purge is fully applied. */
  markAppliedInTxn(sequence: number): void {
    const entry = this.get(sequence);
    if (entry !== undefined && !entry.applied) this.#store.logPutInTxn(sequence, { ...entry, applied: true });
  }

  /**
   * Inside a write transaction: sets a purge aside. It counts as applied from now on (a restart
   * does not try it again) and is listed by `quarantined()`.
   */
  quarantineInTxn(sequence: number, entry: LoggedPurge, record: QuarantinedPurge): void {
    this.#store.logPutInTxn(sequence, { ...entry, applied: true, quarantined: record.reason });
    const list = [...this.quarantined().filter((q) => q.sequence !== sequence), record];
    void this.#store.writeMeta(QUARANTINE, list.slice(-QUARANTINE_KEPT));
  }

  /** Purges set aside because they could not be applied, oldest first. */
  quarantined(): QuarantinedPurge[] {
    const list = this.#store.readMeta(QUARANTINE);
    return Array.isArray(list) ? (list as QuarantinedPurge[]) : [];
  }

  get(sequence: number): LoggedPurge | undefined {
    return this.#store.logGet<LoggedPurge>(sequence);
  }

  /** Up to `limit` purges after `sequence`, in order. */
  after(sequence: number, limit: number): Array<{ sequence: number; entry: LoggedPurge }> {
    const found: Array<{ sequence: number; entry: LoggedPurge }> = [];
    for (const { sequence: key, value } of this.#store.logRange<LoggedPurge>({
      start: sequence + 1,
      limit,
    })) {
      found.push({ sequence: key, entry: value });
    }
    return found;
  }

  /** The oldest sequence still in the log (undefined when empty). */
  get oldest(): number | undefined {
    return this.#store.logSequences({ limit: 1 })[0];
  }

  /** Purges appended but not fully applied (a crash interrupted them). */
  unapplied(): Array<{ sequence: number; entry: LoggedPurge }> {
    const found: Array<{ sequence: number; entry: LoggedPurge }> = [];
    for (const { sequence, value } of this.#store.logRange<LoggedPurge>())
      if (!value.applied) found.push({ sequence, entry: value });
    return found;
  }

  /** The last sequence delivered to a peer (persisted, so a restart resumes). */
  delivered(peer: string): number | undefined {
    return this.#store.readMeta(`${PEER_PREFIX}${peer}`) as number | undefined;
  }

  setDelivered(peer: string, sequence: number): Promise<boolean> {
    return this.#store.writeMeta(`${PEER_PREFIX}${peer}`, sequence);
  }

  /** Every peer with a persisted delivered sequence (also peers no longer configured). */
  peers(): Array<{ peer: string; delivered: number }> {
    const found: Array<{ peer: string; delivered: number }> = [];
    for (const { key, value } of this.#store.metaUnder(PEER_PREFIX)) {
      found.push({ peer: key.slice(PEER_PREFIX.length), delivered: value as number });
    }
    return found;
  }

  /**
   * Keeps the last `keep` purges, and every purge some peer still lacks (`deliveredThrough`:
   * the lowest sequence every peer has acknowledged).
   */
  retain(keep: number, deliveredThrough: number): Promise<number> {
    const through = Math.min(this.sequence - keep, deliveredThrough);
    const oldest = this.oldest;
    if (oldest === undefined || through < oldest) return Promise.resolve(0);
    return this.trim(through);
  }

  /** Removes the purges at or below `through`, in bounded batches. */
  async trim(through: number): Promise<number> {
    let removed = 0;
    for (let round = 0; round < 1000; round++) {
      const keys = this.#store.logSequences({ end: through + 1, limit: 1000 });
      if (keys.length === 0) break;
      await this.#store.logRemove(keys);
      removed += keys.length;
    }
    return removed;
  }
}
