/**
 * The node-wide collapse lock, kept by the primary: one origin fetch per cold key per node,
 * whichever worker the requests land on. lmdb's attemptLock holds only inside one process,
 * so workers ask here over IPC. States follow the well-known cache-lock model:
 *
 * - free → the asking worker leads ('lead');
 * - held → the asker waits (or hears 'busy' at once when it does not want to wait);
 * - announced (the leader's response is being stored) → waiters, and askers from then on,
 *   become readers: they are told where the body is, then how many of its chunks are
 *   committed as they are (read-while-writer across workers: they stream from LMDB);
 * - done (the leader's fill committed or was abandoned) → readers hear the fill's end
 *   (its chunk count, or that it failed: cut short); waiters 'look-again': they read the
 *   committed entry from LMDB, or compete again for a new leader;
 * - failed (transient error, leader's worker died, lease expired) → waiters 'failed': they
 *   look again and compete: exactly one of them becomes the new leader; when the leader's
 *   worker died, its readers hear so ('exited'): those that sent their client nothing yet
 *   compete too, the others are cut short;
 * - uncacheable → waiters 'uncacheable' (they fetch on their own) and a hit-for-pass
 *   marker answers the next askers at once (none for a refusal that answers one client: a 4xx
 *   or a 508; its waiters are told 'refused': they fetch on their own and store);
 * - a waiter's timeout is the worker's own: it cancels and fetches unstored.
 *
 * - closed by a purge → new askers for the key start a new lock (a fetch the purge does not
 *   void); the closed lock's leader, waiters and readers go on to its end.
 *
 * A leader reporting progress renews its lease: only a fill that stopped moving loses it.
 * Messages stay small (a header list at most): bodies travel through LMDB, never over IPC.
 */
import { type FillPurge, HIT_FOR_PASS_MAX, HIT_FOR_PASS_SWEEP, purgeCovers } from '../cache/collapse.ts';
import { ExpiryMap } from '../cache/expiry-map.ts';
import type { FillAnnouncement, LockMessage, LockVerdict, ReleaseMessage } from './protocol.ts';

interface Holder {
  worker: number;
  id: number;
}

interface Lock {
  key: string;
  leader: Holder;
  /** Waiting for the leader's response. */
  waiters: Holder[];
  /** The leader's fill, once announced, and its chunks committed so far. */
  fill: FillAnnouncement | undefined;
  committed: number;
  /** Reading the announced fill. */
  readers: Holder[];
  lease: NodeJS.Timeout;
  /** The leader's worker was told another waits (its commit then goes at once). */
  hurried: boolean;
}

export interface LockBrokerOptions {
  send: (worker: number, message: LockMessage) => void;
  hitForPassMs: number;
  /** Longest a leader may hold a key before the lock is taken from it (a stuck worker). */
  leaseMs: number;
  now: () => number;
  onLeaseExpired?: (key: string) => void;
}

export class LockBroker {
  /** The lock new askers of a key meet. */
  readonly #locks = new Map<string, Lock>();
  /** Locks a purge closed to new askers, still running for those they hold. */
  readonly #closed = new Set<Lock>();
  /** `worker:id` → its lock, for leaders, waiters and readers alike. */
  readonly #requests = new Map<string, Lock>();
  readonly #hitForPass = new ExpiryMap<true>(HIT_FOR_PASS_SWEEP, HIT_FOR_PASS_MAX);
  readonly #options: LockBrokerOptions;

  constructor(options: LockBrokerOptions) {
    this.#options = options;
  }

  acquire(worker: number, id: number, key: string, wait: boolean): void {
    if (this.#isHitForPass(key)) return this.#verdict({ worker, id }, 'uncacheable');
    const lock = this.#locks.get(key);
    if (lock === undefined) {
      const leader = { worker, id };
      let created!: Lock;
      const lease = setTimeout(() => this.#expire(created), this.#options.leaseMs);
      lease.unref();
      created = {
        key,
        leader,
        waiters: [],
        fill: undefined,
        committed: 0,
        readers: [],
        lease,
        hurried: false,
      };
      this.#locks.set(key, created);
      this.#requests.set(ref(worker, id), created);
      return this.#verdict(leader, 'lead');
    }
    if (!wait) return this.#verdict({ worker, id }, 'busy');
    this.#requests.set(ref(worker, id), lock);
    if (!lock.hurried && lock.leader.worker !== worker) {
      lock.hurried = true;
      this.#options.send(lock.leader.worker, { strata: 'hurry', id: lock.leader.id });
    }
    if (lock.fill === undefined) lock.waiters.push({ worker, id });
    else this.#addReader(lock, { worker, id });
  }

  /** The leader's response is being stored: its waiters become readers of the fill. */
  announce(worker: number, id: number, fill: FillAnnouncement, committed: number): void {
    const lock = this.#leading(worker, id);
    if (lock === undefined || lock.fill !== undefined) return;
    lock.fill = fill;
    lock.committed = committed;
    lock.lease.refresh();
    const waiters = lock.waiters;
    lock.waiters = [];
    for (const waiter of waiters) this.#addReader(lock, waiter);
  }

  /** The leader committed chunks [0, committed): relayed to every reader. */
  committed(worker: number, id: number, committed: number): void {
    const lock = this.#leading(worker, id);
    if (lock === undefined || lock.fill === undefined || committed <= lock.committed) return;
    lock.committed = committed;
    lock.lease.refresh();
    for (const reader of lock.readers)
      this.#options.send(reader.worker, { strata: 'committed', id: reader.id, committed });
  }

  /** A waiter gave up; a leader that gave up (granted too late) counts as failed. */
  cancel(worker: number, id: number): void {
    const lock = this.#lockOf(worker, id);
    if (lock === undefined) return;
    if (isHolder(lock.leader, worker, id)) return this.#end(lock, 'failed');
    lock.waiters = lock.waiters.filter((w) => !isHolder(w, worker, id));
    lock.readers = lock.readers.filter((r) => !isHolder(r, worker, id));
    this.#requests.delete(ref(worker, id));
  }

  /** 'refused': the leader's client was refused (a 4xx or 508 about it): no hit-for-pass marker. */
  release(worker: number, id: number, result: ReleaseMessage['result'], chunks?: number): void {
    const lock = this.#leading(worker, id);
    if (lock === undefined) return;
    if (result === 'uncacheable') this.#markHitForPass(lock.key);
    this.#end(lock, result, result === 'done' ? chunks : undefined);
  }

  /**
   * A purge started: the locks of the keys it covers take no new asker (later ones lead a new
   * fetch); those already holding them go on. Returns how many were closed.
   */
  purgeFills(purge: FillPurge): number {
    let closed = 0;
    for (const [key, lock] of this.#locks) {
      if (!purgeCovers(purge, key, lock.fill === undefined ? undefined : (lock.fill.tags ?? []))) continue;
      this.#locks.delete(key);
      this.#closed.add(lock);
      this.#hitForPass.delete(key);
      closed++;
    }
    return closed;
  }

  /**
   * A worker exited: its locks fail over to their waiters (and to its fills' readers that sent
   * nothing yet: 'exited'), its waiters are forgotten.
   */
  workerGone(worker: number): void {
    for (const lock of [...this.#locks.values(), ...this.#closed]) {
      if (lock.leader.worker === worker) {
        this.#end(lock, 'failed', undefined, true);
        continue;
      }
      for (const h of [...lock.waiters, ...lock.readers])
        if (h.worker === worker) this.#requests.delete(ref(h.worker, h.id));
      lock.waiters = lock.waiters.filter((w) => w.worker !== worker);
      lock.readers = lock.readers.filter((r) => r.worker !== worker);
    }
  }

  get locks(): number {
    return this.#locks.size + this.#closed.size;
  }

  /** Requests waiting on a lock: for the leader's response, or reading its fill. */
  get waiters(): number {
    let count = 0;
    for (const lock of [...this.#locks.values(), ...this.#closed])
      count += lock.waiters.length + lock.readers.length;
    return count;
  }

  close(): void {
    for (const lock of [...this.#locks.values(), ...this.#closed]) clearTimeout(lock.lease);
    this.#locks.clear();
    this.#closed.clear();
    this.#requests.clear();
  }

  #lockOf(worker: number, id: number): Lock | undefined {
    return this.#requests.get(ref(worker, id));
  }

  #leading(worker: number, id: number): Lock | undefined {
    const lock = this.#lockOf(worker, id);
    return lock !== undefined && isHolder(lock.leader, worker, id) ? lock : undefined;
  }

  #addReader(lock: Lock, reader: Holder): void {
    lock.readers.push(reader);
    this.#options.send(reader.worker, {
      strata: 'fill',
      id: reader.id,
      fill: lock.fill!,
      committed: lock.committed,
    });
  }

  #verdict(to: Holder, verdict: LockVerdict): void {
    this.#options.send(to.worker, { strata: 'verdict', id: to.id, verdict });
  }

  /**
   * `chunks`: the fill's whole body is in LMDB (else its readers are cut short); `exited`: the
   * leader's worker exited (readers that sent nothing yet may ask again).
   */
  #end(lock: Lock, result: ReleaseMessage['result'], chunks?: number, exited = false): void {
    clearTimeout(lock.lease);
    if (this.#locks.get(lock.key) === lock) this.#locks.delete(lock.key);
    this.#closed.delete(lock);
    this.#requests.delete(ref(lock.leader.worker, lock.leader.id));
    for (const w of lock.waiters) {
      this.#requests.delete(ref(w.worker, w.id));
      this.#verdict(w, result === 'done' ? 'look-again' : result);
    }
    for (const r of lock.readers) {
      this.#requests.delete(ref(r.worker, r.id));
      this.#options.send(r.worker, {
        strata: 'fill-end',
        id: r.id,
        ...(chunks === undefined ? {} : { chunks }),
        ...(exited ? { exited: true as const } : {}),
      });
    }
  }

  #expire(lock: Lock): void {
    if (this.#locks.get(lock.key) !== lock && !this.#closed.has(lock)) return;
    this.#options.onLeaseExpired?.(lock.key);
    this.#end(lock, 'failed');
  }

  #isHitForPass(key: string): boolean {
    return this.#hitForPass.get(key, this.#options.now()) === true;
  }

  #markHitForPass(key: string): void {
    const now = this.#options.now();
    this.#hitForPass.set(key, true, now + this.#options.hitForPassMs, now);
  }
}

function ref(worker: number, id: number): string {
  return `${worker}:${id}`;
}

function isHolder(holder: Holder, worker: number, id: number): boolean {
  return holder.worker === worker && holder.id === id;
}
