/**
 * Keeps N worker processes running: forks them, restarts one that crashes (with a growing
 * delay, and gives up on a crash loop), replaces them one at a time (SIGHUP) so the shared
 * listeners never stop accepting, and drains them all on shutdown.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

export interface SupervisorOptions {
  count: number;
  /** Environment of a new worker (carries its config). */
  env: () => Record<string, string>;
  log: Logger;
  /** A worker exited, for whatever reason (its locks must fail over). */
  onExit: (worker: Worker) => void;
  /** Workers keep crashing: the node cannot run. */
  onGiveUp: (why: string) => void;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** Crashes in a row without a stable run in between. */
  crashes: number;
  startedAt: number;
  restart: NodeJS.Timeout | undefined;
}

/** A worker that ran this long before crashing is restarted at once. */
const STABLE_MS = 30_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
/** Crashes in a row (never stable in between) before the node gives up. */
const MAX_CRASHES = 8;
const READY_TIMEOUT_MS = 30_000;
export const DRAIN_TIMEOUT_MS = 30_000;

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #slots: Slot[] = [];
  readonly #ready = new Map<number, () => void>();
  /** Workers that said their listeners are bound (before that, they do not read 'shutdown' yet). */
  readonly #serving = new Set<number>();
  /** Workers being replaced or drained (their exit is not a crash), by id: the exit each waits for. */
  readonly #retirements = new Map<number, Promise<void>>();
  readonly #exited = new Map<number, () => void>();
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal));
  }

  get workers(): Worker[] {
    return this.#slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  }

  /** Forks every worker; resolves when all listen, rejects if one dies first. */
  async start(): Promise<void> {
    const starting: Promise<boolean>[] = [];
    for (let index = 0; index < this.#options.count; index++) {
      const slot: Slot = { index, worker: undefined, crashes: 0, startedAt: 0, restart: undefined };
      this.#slots.push(slot);
      starting.push(this.#readyOrExit(this.#fork(slot)));
    }
    const results = await Promise.all(starting);
    if (results.includes(false)) throw new Error('a worker exited during startup (its error is above)');
  }

  /** The worker said its listeners are bound. */
  ready(worker: Worker): void {
    this.#serving.add(worker.id);
    this.#ready.get(worker.id)?.();
  }

  /** Replaces every worker, one at a time: the new one listens before the old one drains. */
  async replaceAll(): Promise<void> {
    for (const slot of this.#slots) {
      if (this.#stopping) return;
      const old = slot.worker;
      const fresh = this.#fork(slot);
      if (!(await this.#readyOrExit(fresh))) {
        // Stopped while the new worker was starting: stop() drains the old one.
        if (this.#stopping) return;
        this.#options.log.error(
          { slot: slot.index },
          'replacement worker failed to start; keeping the old one',
        );
        clearTimeout(slot.restart);
        slot.worker = old;
        await this.#retire(fresh);
        return;
      }
      if (old) await this.#retire(old);
    }
  }

  /**
   * Drains every live worker (bounded by DRAIN_TIMEOUT_MS, then killed): those in the slots and
   * any outside them, such as the old worker of a replacement under way (its new one, not ready
   * yet, is stopped at once) or one already draining.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const slot of this.#slots) clearTimeout(slot.restart);
    const live = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    await Promise.all(live.map((worker) => this.#retire(worker)));
  }

  #fork(slot: Slot): Worker {
    const worker = cluster.fork(this.#options.env());
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.restart = undefined;
    return worker;
  }

  #readyOrExit(worker: Worker): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), READY_TIMEOUT_MS);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#ready.delete(worker.id);
        worker.off('exit', onExit);
        resolve(ok);
      };
      const onExit = () => done(false);
      this.#ready.set(worker.id, () => done(true));
      worker.once('exit', onExit);
    });
  }

  /** Drains `worker` (once: a second call waits for the same exit). */
  #retire(worker: Worker): Promise<void> {
    if (worker.isDead()) return Promise.resolve();
    let retiring = this.#retirements.get(worker.id);
    if (retiring === undefined) {
      retiring = this.#drain(worker).finally(() => this.#retirements.delete(worker.id));
      this.#retirements.set(worker.id, retiring);
    }
    return retiring;
  }

  async #drain(worker: Worker): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#exited.set(worker.id, resolve));
    // A worker still starting (a restart after a crash) has nothing to drain and no message
    // handler yet: a 'shutdown' sent now went unread and the node waited DRAIN_TIMEOUT_MS for
    // it. SIGTERM ends it (or, once its handler is set, drains it).
    if (worker.isConnected() && this.#serving.has(worker.id)) worker.send({ strata: 'shutdown' });
    else worker.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.#options.log.warn({ worker: worker.id }, 'worker did not drain in time; killing it');
      worker.process.kill('SIGKILL');
    }, DRAIN_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  #onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.#serving.delete(worker.id);
    this.#options.onExit(worker);
    this.#exited.get(worker.id)?.();
    this.#exited.delete(worker.id);
    // Still listed: the retirement ends (and unlists it) once this exit has resolved it.
    const retired = this.#retirements.has(worker.id);
    const slot = this.#slots.find((s) => s.worker === worker);
    if (retired || this.#stopping || slot === undefined) return;
    const now = Date.now();
    slot.crashes = now - slot.startedAt >= STABLE_MS ? 1 : slot.crashes + 1;
    slot.worker = undefined;
    if (slot.crashes > MAX_CRASHES) {
      this.#options.onGiveUp(`worker ${slot.index} crashed ${slot.crashes} times in a row`);
      return;
    }
    const delay = Math.min(FIRST_DELAY_MS * 2 ** (slot.crashes - 1), MAX_DELAY_MS);
    this.#options.log.error(
      { worker: worker.id, slot: slot.index, code, signal, restartInMs: delay },
      'worker exited unexpectedly; restarting it',
    );
    slot.restart = setTimeout(() => {
      if (!this.#stopping) this.#fork(slot);
    }, delay);
  }
}
