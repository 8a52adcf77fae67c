/**
 * Entry commits gathered into one LMDB write transaction: each commit waits up to `delayMs`
 * (or until `max` are waiting) for others to share its transaction. Every transaction rewrites
 * the B-tree pages from its leaves to the root and is flushed to disk on its own (lmdb-js's
 * overlapping sync): fewer, larger transactions cost LMDB's commit thread and the disk less per
 * entry. A commit's work runs inside the shared transaction as it would in its own; one that
 * throws rejects alone (as with lmdb-js's own batching, the writes it made before throwing
 * stay). A failed transaction rejects every commit in it.
 *
 * No response waits for this: a response streams from the fill. A request for the key meanwhile
 * follows the fill (collapse.ts) and, when it must wait for the commit, holds the gathering
 * open (`hold`): commits are made at once while it waits. So does a worker whose fill another
 * worker waits for, told so by the primary (lock-broker.ts 'hurry'), until that fill ends.
 */

/** What started a transaction of gathered commits. */
export type CommitTrigger = 'delay' | 'full' | 'waited' | 'at-once';

interface Waiting {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class GatheredCommits {
  readonly #run: <T>(work: () => T) => Promise<T>;
  readonly #delayMs: number;
  readonly #max: number;
  #waiting: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Requests waiting for a commit of this process: while any, nothing waits. */
  #holds = 0;
  #observer: ((trigger: CommitTrigger) => void) | undefined;

  /** `run` executes its work in one write transaction (CacheStore.write). */
  constructor(run: <T>(work: () => T) => Promise<T>, delayMs: number, max = 256) {
    this.#run = run;
    this.#delayMs = delayMs;
    this.#max = max;
  }

  /** Told of every transaction started, with what started it (the node's metrics). */
  observe(observer: (trigger: CommitTrigger) => void): void {
    this.#observer = observer;
  }

  /** Commits waiting for their transaction. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * `atOnce`: a request waits for this commit (its client is answered from the stored entry):
   * it goes now, with the commits waiting.
   */
  commit<T>(work: () => T, atOnce = false): Promise<T> {
    if (this.#delayMs <= 0) {
      this.#observer?.('at-once');
      return this.#run(work);
    }
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#waiting.length >= this.#max) void this.flush('full');
      else if (atOnce || this.#holds > 0) void this.flush('waited');
      else this.#timer ??= setTimeout(() => void this.flush('delay'), this.#delayMs);
    });
  }

  /** Someone waits for a commit: the waiting ones go now, later ones at once until `release`. */
  hold(): () => void {
    this.#holds++;
    void this.flush('waited');
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#holds--;
    };
  }

  /**
   * The store closes: the waiting commits go now, and every later one at once (one made while
   * the store closes is then in LMDB's queue before the environment closes, not on a timer
   * that would fire after it).
   */
  close(): Promise<void> {
    this.#holds++;
    return this.flush('waited');
  }

  /** Starts the waiting commits' transaction now (a full batch, the timer, a closing store). */
  flush(trigger: CommitTrigger = 'waited'): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#waiting;
    if (batch.length === 0) return Promise.resolve();
    this.#waiting = [];
    this.#observer?.(trigger);
    const results: unknown[] = new Array(batch.length);
    const failed: boolean[] = new Array(batch.length).fill(false);
    return this.#run(() => {
      for (let i = 0; i < batch.length; i++) {
        try {
          results[i] = batch[i]!.work();
        } catch (error) {
          results[i] = error;
          failed[i] = true;
        }
      }
    }).then(
      () => {
        for (let i = 0; i < batch.length; i++) {
          if (failed[i]) batch[i]!.reject(results[i]);
          else batch[i]!.resolve(results[i]);
        }
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
  }
}
