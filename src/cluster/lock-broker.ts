/**
 * The node-wide collapse lock, kept by the primary: one origin fetch per cold key per node,
 * whichever worker the requests land on. lmdb's attemptLock holds only inside one process,
 * so workers ask here over IPC. States follow the well-known cache-lock model:
 *
 * - free → the asking worker leads ('lead');
 * - held → the asker waits (or hears 'busy' at once when it does not want to wait);
 * - done (the leader's fill committed or was abandoned) → waiters 'look-again': they read
 *   the committed entry from LMDB, or compete again for a new leader;
 * - failed (transient error, leader's worker died, lease expired) → waiters 'look-again'
 *   and compete: exactly one of them becomes the new leader;
 * - uncacheable → waiters 'uncacheable' (they fetch on their own) and a hit-for-pass
 *   marker answers the next askers at once;
 * - a waiter's timeout is the worker's own: it cancels and fetches unstored.
 */
import type { LockVerdict } from './protocol.ts';

interface Holder {
  worker: number;
  id: number;
}

interface Lock {
  key: string;
  leader: Holder;
  waiters: Holder[];
  lease: NodeJS.Timeout;
}

export interface LockBrokerOptions {
  send: (worker: number, id: number, verdict: LockVerdict) => void;
  hitForPassMs: number;
  /** Longest a leader may hold a key before the lock is taken from it (a stuck worker). */
  leaseMs: number;
  now: () => number;
  onLeaseExpired?: (key: string) => void;
}

/** Above this many hit-for-pass markers, expired ones are swept on insert … */
const HIT_FOR_PASS_SWEEP = 10_000;
/** … and past this many, the oldest are dropped (a marker only saves a queue). */
const HIT_FOR_PASS_MAX = 100_000;

export class LockBroker {
  readonly #locks = new Map<string, Lock>();
  /** `worker:id` → key, for leaders and waiters alike. */
  readonly #requests = new Map<string, string>();
  readonly #hitForPass = new Map<string, number>();
  readonly #options: LockBrokerOptions;

  constructor(options: LockBrokerOptions) {
    this.#options = options;
  }

  acquire(worker: number, id: number, key: string, wait: boolean): void {
    const send = this.#options.send;
    if (this.#isHitForPass(key)) return send(worker, id, 'uncacheable');
    const lock = this.#locks.get(key);
    if (lock === undefined) {
      const lease = setTimeout(() => this.#expire(key), this.#options.leaseMs);
      lease.unref();
      this.#locks.set(key, { key, leader: { worker, id }, waiters: [], lease });
      this.#requests.set(ref(worker, id), key);
      return send(worker, id, 'lead');
    }
    if (!wait) return send(worker, id, 'busy');
    lock.waiters.push({ worker, id });
    this.#requests.set(ref(worker, id), key);
  }

  /** A waiter gave up; a leader that gave up (granted too late) counts as failed. */
  cancel(worker: number, id: number): void {
    const lock = this.#lockOf(worker, id);
    if (lock === undefined) return;
    if (isHolder(lock.leader, worker, id)) return this.#end(lock, 'failed');
    lock.waiters = lock.waiters.filter((w) => !isHolder(w, worker, id));
    this.#requests.delete(ref(worker, id));
  }

  release(worker: number, id: number, result: 'done' | 'failed' | 'uncacheable'): void {
    const lock = this.#lockOf(worker, id);
    if (lock === undefined || !isHolder(lock.leader, worker, id)) return;
    if (result === 'uncacheable') this.#markHitForPass(lock.key);
    this.#end(lock, result);
  }

  /** A worker exited: its locks fail over to their waiters, its waiters are forgotten. */
  workerGone(worker: number): void {
    for (const lock of [...this.#locks.values()]) {
      if (lock.leader.worker === worker) {
        this.#end(lock, 'failed');
        continue;
      }
      for (const w of lock.waiters) if (w.worker === worker) this.#requests.delete(ref(w.worker, w.id));
      lock.waiters = lock.waiters.filter((w) => w.worker !== worker);
    }
  }

  get locks(): number {
    return this.#locks.size;
  }

  get waiters(): number {
    let count = 0;
    for (const lock of this.#locks.values()) count += lock.waiters.length;
    return count;
  }

  close(): void {
    for (const lock of this.#locks.values()) clearTimeout(lock.lease);
    this.#locks.clear();
    this.#requests.clear();
  }

  #lockOf(worker: number, id: number): Lock | undefined {
    const key = this.#requests.get(ref(worker, id));
    return key === undefined ? undefined : this.#locks.get(key);
  }

  #end(lock: Lock, result: 'done' | 'failed' | 'uncacheable'): void {
    clearTimeout(lock.lease);
    this.#locks.delete(lock.key);
    this.#requests.delete(ref(lock.leader.worker, lock.leader.id));
    const verdict: LockVerdict = result === 'uncacheable' ? 'uncacheable' : 'look-again';
    for (const w of lock.waiters) {
      this.#requests.delete(ref(w.worker, w.id));
      this.#options.send(w.worker, w.id, verdict);
    }
  }

  #expire(key: string): void {
    const lock = this.#locks.get(key);
    if (lock === undefined) return;
    this.#options.onLeaseExpired?.(key);
    this.#end(lock, 'failed');
  }

  #isHitForPass(key: string): boolean {
    const until = this.#hitForPass.get(key);
    if (until === undefined) return false;
    if (until > this.#options.now()) return true;
    this.#hitForPass.delete(key);
    return false;
  }

  #markHitForPass(key: string): void {
    const now = this.#options.now();
    if (this.#hitForPass.size >= HIT_FOR_PASS_SWEEP) {
      for (const [k, until] of this.#hitForPass) if (until <= now) this.#hitForPass.delete(k);
      for (const k of this.#hitForPass.keys()) {
        if (this.#hitForPass.size < HIT_FOR_PASS_MAX) break;
        this.#hitForPass.delete(k);
      }
    }
    this.#hitForPass.set(key, now + this.#options.hitForPassMs);
  }
}

function ref(worker: number, id: number): string {
  return `${worker}:${id}`;
}

function isHolder(holder: Holder, worker: number, id: number): boolean {
  return holder.worker === worker && holder.id === id;
}
