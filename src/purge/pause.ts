/**
 * The waits of the loops that deliver purges (to peers, to the bus, from the bus): a pause that
 * ends after its time or at once when woken (a new purge to send, a stop), and the retry wait
 * that doubles with each failure in a row.
 */
export class Pause {
  #wake: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as `wake` is called. The timer never holds the process. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#wake = done;
    });
  }

  /** Ends the pause under way, if any. */
  wake(): void {
    this.#wake?.();
  }
}

/** The wait after `failures` failed attempts in a row: `initial`, doubling, at most `max`. */
export function backoff(retry: { initial: number; max: number }, failures: number): number {
  return Math.min(retry.max, retry.initial * 2 ** Math.min(30, failures - 1));
}
