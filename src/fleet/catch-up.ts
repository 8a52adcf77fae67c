/**
 * Readiness after a start: the node is not ready until it has applied every purge the stream
 * held when its consumer was set up (`target`), so a load balancer sends it no client while it
 * could still serve something purged while it was down. Past `timeoutMs` (the bus unreachable,
 * a replay longer than allowed) it reports ready anyway and says why: a bus that is down must
 * not take every node of the fleet out of service with it.
 */
export type CatchUpState = { ready: true; reason?: string } | { ready: false; reason: string };

export class CatchUp {
  readonly #startedAt: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Stream sequence to reach; undefined until the consumer is set up. */
  #target: number | undefined;
  #handled = 0;
  #caughtUpAt: number | undefined;
  #gaveUp = false;
  #missed: string | undefined;

  constructor(timeoutMs: number, now: () => number = performance.now.bind(performance)) {
    this.#now = now;
    this.#startedAt = now();
    this.#timeoutMs = timeoutMs;
  }

  /** The consumer is set up: `target` is the last stream sequence it must handle (0: none). */
  setTarget(target: number): void {
    if (this.#target !== undefined) return;
    this.#target = target;
    this.#check();
  }

  /** A message up to this stream sequence was applied (or skipped as already applied). */
  handled(sequence: number): void {
    if (sequence > this.#handled) this.#handled = sequence;
    this.#check();
  }

  get target(): number | undefined {
    return this.#target;
  }

  get position(): number {
    return this.#handled;
  }

  /** Milliseconds from start to caught up (undefined while catching up or given up). */
  get tookMs(): number | undefined {
    return this.#caughtUpAt === undefined ? undefined : this.#caughtUpAt - this.#startedAt;
  }

  /** The catch-up time has passed (caught up or not). */
  get expired(): boolean {
    return this.#now() - this.#startedAt >= this.#timeoutMs;
  }

  get caughtUp(): boolean {
    return this.#caughtUpAt !== undefined;
  }

  /**
   * Purges `from`..`to` left the stream (retention) before this node applied them: it may serve
   * objects they purged. Said with every readiness answer from then on (ready, with a warning:
   * the operator purges here, or lets the objects expire).
   */
  missed(from: number, to: number): void {
    this.#missed = `purges ${from} to ${to} left the purge stream before this node applied them: objects they purged may still be served here (purge them on this node, or purge all)`;
  }

  state(): CatchUpState {
    const missed = this.#missed;
    if (missed !== undefined && (this.#caughtUpAt !== undefined || this.#gaveUp))
      return { ready: true, reason: missed };
    if (this.#caughtUpAt !== undefined) return { ready: true };
    if (this.#gaveUp || this.#now() - this.#startedAt >= this.#timeoutMs) {
      this.#gaveUp = true;
      return {
        ready: true,
        reason:
          this.#target === undefined
            ? 'purge bus unreachable since start: purges published meanwhile are not applied yet'
            : `purge bus replay still running (${this.#handled} of ${this.#target})`,
      };
    }
    return {
      ready: false,
      reason:
        this.#target === undefined
          ? 'waiting for the purge bus'
          : `catching up with the purge bus (${this.#handled} of ${this.#target})`,
    };
  }

  #check(): void {
    if (this.#caughtUpAt === undefined && this.#target !== undefined && this.#handled >= this.#target)
      this.#caughtUpAt = this.#now();
  }
}
