/**
 * Latency of one origin as the selector sees it: a peak-sensitive EWMA of the time to
 * response headers (not total time: a large body is not a slow origin), with a failure
 * penalty so that a fast 5xx or a refused connection never looks fast.
 *
 * Peak EWMA (Finagle/Linkerd): a sample above the estimate replaces it at once, so a
 * slowing origin loses traffic on its first slow answer; samples below decay it with a
 * weight that depends on the time since the last sample (tau), so the estimate forgets
 * at the same rate whatever the request rate. Read at a time, the estimate decays toward 0
 * since its last sample (Finagle reads it as observing 0): an origin that gets no traffic
 * looks faster and faster until one request measures it again, so one slow answer (or a
 * failure) does not keep an origin out for good.
 */

/** How fast an estimate forgets (ms): after tau without samples, an old value weighs 1/e. */
export const LATENCY_TAU_MS = 2000;
/** A failure counts as at least this slow (ms), or as twice the estimate if that is more. */
export const FAILURE_PENALTY_MS = 1000;

export class LatencyEwma {
  #value: number | undefined;
  #at = 0;

  /** The last computed estimate (ms), without decay; undefined before the first sample. */
  get value(): number | undefined {
    return this.#value;
  }

  /** The estimate (ms) as of `now`, decayed since its last sample; undefined before the first sample. */
  at(now: number): number | undefined {
    if (this.#value === undefined) return undefined;
    const elapsed = now - this.#at;
    return elapsed <= 0 ? this.#value : this.#value * Math.exp(-elapsed / LATENCY_TAU_MS);
  }

  /** A response's time to headers, in ms, observed at `now`. */
  observe(ms: number, now: number): void {
    const sample = Math.max(0, ms);
    if (this.#value === undefined || sample >= this.#value) {
      this.#value = sample;
    } else {
      const weight = Math.exp(-Math.max(0, now - this.#at) / LATENCY_TAU_MS);
      this.#value = this.#value * weight + sample * (1 - weight);
    }
    this.#at = now;
  }

  /** A failed attempt (connect error, timeout, 5xx): the origin looks slow, however fast it failed. */
  penalize(now: number): void {
    this.observe(Math.max(FAILURE_PENALTY_MS, 2 * (this.#value ?? 0)), now);
  }

  /** Forgets everything: an origin back from ejection is measured afresh. */
  reset(): void {
    this.#value = undefined;
  }
}
