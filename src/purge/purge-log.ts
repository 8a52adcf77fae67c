/**
 * The durable purge log: the `purges` database, sequence number → purge command. A purge
 * is appended in the same write transaction that starts applying it and acknowledged only
 * after commit; peers are fed from it in order, and a restart finishes applying what a
 * crash interrupted. Sequences come from the `meta` counter `purgeLogSeq`, so they keep
 * growing after the log is trimmed.
 */
import type { Database } from 'lmdb';
import type { CacheStore } from '../cache/store.ts';
import type { PurgeCommand } from './command.ts';

export interface LoggedPurge {
  command: PurgeCommand;
  /** Clock time (ms) of the append. */
  at: number;
  /** Nodes the purge passed through before this one (ids), for loop-free forwarding. */
  path: string[];
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

const SEQUENCE = 'purgeLogSeq';
const PEER_PREFIX = 'purgePeer:';
const QUARANTINE = 'purgeQuarantine';
/** Quarantined purges remembered for /stats (the newest). */
const QUARANTINE_KEPT = 100;

export class PurgeLog {
  readonly db: Database<LoggedPurge, number>;
  readonly #store: CacheStore;

  constructor(store: CacheStore) {
    this.#store = store;
    this.db = store.env.openDB<LoggedPurge, number>({ name: 'purges' });
  }

  /** The last sequence handed out (0 before the first purge). */
  get sequence(): number {
    return (this.#store.meta.get(SEQUENCE) as number | undefined) ?? 0;
  }

  /** Inside a write transaction: appends a purge and returns its sequence. */
  appendInTxn(entry: LoggedPurge): number {
    const sequence = this.sequence + 1;
    this.#store.meta.put(SEQUENCE, sequence);
    this.db.put(sequence, entry);
    return sequence;
  }

  /** Inside a write transaction: records that a purge is fully applied. */
  markAppliedInTxn(sequence: number): void {
    const entry = this.db.get(sequence);
    if (entry !== undefined && !entry.applied) this.db.put(sequence, { ...entry, applied: true });
  }

  /**
   * Inside a write transaction: sets a purge aside. It counts as applied from now on (a restart
   * does not try it again) and is listed by `quarantined()`.
   */
  quarantineInTxn(sequence: number, entry: LoggedPurge, record: QuarantinedPurge): void {
    this.db.put(sequence, { ...entry, applied: true, quarantined: record.reason });
    const list = [...this.quarantined().filter((q) => q.sequence !== sequence), record];
    this.#store.meta.put(QUARANTINE, list.slice(-QUARANTINE_KEPT));
  }

  /** Purges set aside because they could not be applied, oldest first. */
  quarantined(): QuarantinedPurge[] {
    const list = this.#store.meta.get(QUARANTINE);
    return Array.isArray(list) ? (list as QuarantinedPurge[]) : [];
  }

  get(sequence: number): LoggedPurge | undefined {
    return this.db.get(sequence);
  }

  /** Up to `limit` purges after `sequence`, in order. */
  after(sequence: number, limit: number): Array<{ sequence: number; entry: LoggedPurge }> {
    const found: Array<{ sequence: number; entry: LoggedPurge }> = [];
    for (const { key, value } of this.db.getRange({ start: sequence + 1, limit })) {
      found.push({ sequence: key, entry: value });
    }
    return found;
  }

  /** The oldest sequence still in the log (undefined when empty). */
  get oldest(): number | undefined {
    for (const key of this.db.getKeys({ limit: 1 })) return key;
    return undefined;
  }

  /** Purges appended but not fully applied (a crash interrupted them). */
  unapplied(): Array<{ sequence: number; entry: LoggedPurge }> {
    const found: Array<{ sequence: number; entry: LoggedPurge }> = [];
    for (const { key, value } of this.db.getRange({}))
      if (!value.applied) found.push({ sequence: key, entry: value });
    return found;
  }

  /** The last sequence delivered to a peer (persisted, so a restart resumes). */
  delivered(peer: string): number | undefined {
    return this.#store.meta.get(`${PEER_PREFIX}${peer}`) as number | undefined;
  }

  setDelivered(peer: string, sequence: number): Promise<boolean> {
    return this.#store.meta.put(`${PEER_PREFIX}${peer}`, sequence);
  }

  /** Every peer with a persisted delivered sequence (also peers no longer configured). */
  peers(): Array<{ peer: string; delivered: number }> {
    const found: Array<{ peer: string; delivered: number }> = [];
    for (const { key, value } of this.#store.meta.getRange({
      start: PEER_PREFIX,
      end: `${PEER_PREFIX}\uffff`,
    })) {
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
      const keys = [...this.db.getKeys({ end: through + 1, limit: 1000 })];
      if (keys.length === 0) break;
      await this.db.transaction(() => {
        for (const key of keys) this.db.remove(key);
      });
      removed += keys.length;
    }
    return removed;
  }
}
