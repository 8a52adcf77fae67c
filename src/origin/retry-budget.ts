/**
 * Retry budget (Finagle): retries may add at most `percent` of the requests of the last
 * ten seconds, plus `minPerSecond` each second whatever the traffic. When every origin
 * fails, retries are what multiplies load; the budget caps that at 1.2× (by default).
 */
import type { RetryConfig } from '../config/schema.ts';

const WINDOW_SECONDS = 10;

export class RetryBudget {
  readonly #percent: number;
  readonly #minPerSecond: number;
  readonly #now: () => number;
  /** Requests and retries per second, a ring of WINDOW_SECONDS buckets. */
  readonly #requests = new Float64Array(WINDOW_SECONDS);
  readonly #retries = new Float64Array(WINDOW_SECONDS);
  #second = Number.NaN;
  exhausted = 0;

  constructor(config: Pick<RetryConfig, 'budgetPercent' | 'minPerSecond'>, now: () => number) {
    this.#percent = config.budgetPercent;
    this.#minPerSecond = config.minPerSecond;
    this.#now = now;
  }

  /** A request entered (its first attempt). */
  request(): void {
    this.#requests[this.#tick()]! += 1;
  }

  /** Takes one retry from the budget; false (and counted in `exhausted`) when none is left. */
  tryRetry(): boolean {
    const slot = this.#tick();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    const allowed = (this.#percent / 100) * requests + this.#minPerSecond * WINDOW_SECONDS;
    if (retries + 1 > allowed) {
      this.exhausted++;
      return false;
    }
    this.#retries[slot]! += 1;
    return true;
  }

  #tick(): number {
    const second = Math.floor(this.#now() / 1000);
    if (second !== this.#second) {
      // Clears the buckets of the seconds that passed since the last tick (all of them after a pause).
      const gap = Number.isNaN(this.#second)
        ? WINDOW_SECONDS
        : Math.min(WINDOW_SECONDS, second - this.#second);
      for (let i = 0; i < gap; i++) {
        const slot = (((second - i) % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS;
        this.#requests[slot] = 0;
        this.#retries[slot] = 0;
      }
      this.#second = second;
    }
    return ((second % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS;
  }
}
