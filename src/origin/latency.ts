/**
 * Latency of one origin as the selector sees it: an EWMA of the time to response headers
 * (not total time: a large body is not a slow origin), with a failure penalty so that a fast
 * 5xx or a refused connection never looks fast.
 *
 * Each sample moves the estimate a quarter of the way (ALPHA): a 10 ms origin that answers
 * once in 300 ms reads 82 ms at once (it loses traffic to a 50 ms origin on its first slow
 * answer), while a single 90 ms stall of the node itself reads 30 ms and moves nothing. A
 * peak EWMA (Finagle), which jumps to every higher sample, sent 9% of the traffic to the
 * 50 ms origin in a simulation where 1% of answers stall, and half of it in the `origins`
 * bench on a loaded machine (docs/performance.md); this EWMA 0.1% in the same simulation.
 *
 * Read at a time, the estimate decays toward 0 since its last sample (IDLE_TAU_MS): an origin
 * that gets no traffic looks faster and faster until one request measures it again, so a slow
 * answer or a failure does not keep an origin out for good.
 */

/** Weight of a new sample. */
export const ALPHA = 0.25;
/**
 * How fast an idle origin's estimate decays: after this long without samples it weighs 1/e.
 * An estimate of fewer than CONFIDENT_SAMPLES answers decays proportionally faster: one slow
 * first answer (a stall while measuring) is re-measured within a second or two.
 */
export const IDLE_TAU_MS = 10_000;
export const CONFIDENT_SAMPLES = 8;
/** Weight of a new sample in the baseline: the origin's normal latency, against which a slowdown shows. */
export const BASELINE_ALPHA = 0.01;
/** A failure counts as a sample of at least this (ms), or of twice the estimate if that is more. */
export const FAILURE_PENALTY_MS = 1000;

export class LatencyEwma {
  #value: number | undefined;
  #baseline: number | undefined;
  #at = 0;
  #samples = 0;

  /**
   * The origin's normal latency (ms): a slow EWMA of its successful answers. A region whose
   * origins answer far above their baseline is degraded (selection.ts); one that is simply
   * farther than another is not.
   */
  get baseline(): number | undefined {
    return this.#baseline;
  }

  /** When the last sample was observed (the clock of `observe`); undefined before the first. */
  get sampledAt(): number | undefined {
    return this.#value === undefined ? undefined : this.#at;
  }

  /** The estimate (ms) at its last sample, without idle decay; undefined before the first sample. */
  get value(): number | undefined {
    return this.#value;
  }

  /** The estimate (ms) as of `now`, decayed since its last sample; undefined before the first sample. */
  at(now: number): number | undefined {
    if (this.#value === undefined) return undefined;
    const idle = now - this.#at;
    if (idle <= 0) return this.#value;
    const tau = (IDLE_TAU_MS * Math.min(this.#samples, CONFIDENT_SAMPLES)) / CONFIDENT_SAMPLES;
    return this.#value * Math.exp(-idle / tau);
  }

  /** A response's time to headers, in ms, observed at `now`. */
  observe(ms: number, now: number): void {
    const sample = Math.max(0, ms);
    this.#blend(sample, now);
    this.#baseline =
      this.#baseline === undefined ? sample : this.#baseline + BASELINE_ALPHA * (sample - this.#baseline);
  }

  /** A failed attempt (connect error, timeout, 5xx): the origin looks slow, however fast it failed. */
  penalize(now: number): void {
    this.#blend(Math.max(FAILURE_PENALTY_MS, 2 * (this.#value ?? 0)), now);
  }

  /** Forgets everything: an origin back from ejection is measured afresh. */
  reset(): void {
    this.#value = undefined;
    this.#baseline = undefined;
    this.#samples = 0;
  }

  #blend(sample: number, now: number): void {
    // An idle origin starts from its decayed estimate: it was tried because that read low.
    const current = this.at(now);
    this.#value = current === undefined ? sample : current + ALPHA * (sample - current);
    this.#at = now;
    if (this.#samples < CONFIDENT_SAMPLES) this.#samples++;
  }
}
