/**
 * Shared configuration: the node watches one key of a JetStream KV bucket (`fleet.config`).
 * Each new value is parsed (sections.ts), validated as a SIGHUP reload validates the config
 * file, and applied in place — or rejected with the reason while the running configuration
 * keeps serving. Deleting the key goes back to the node's own file. Every outcome is logged,
 * counted (`strata_fleet_config_updates_total{outcome}`) and shown in /stats.
 */

import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { type FleetSections, parseSections } from './sections.ts';

/** What applying a configuration did: applied (with what still needs a restart) or rejected. */
export type ApplyOutcome = { ok: true; needRestart: string[] } | { ok: false; reason: string };

export interface FleetConfigState {
  bucket: string;
  key: string;
  /** KV revision of the last value seen (0: none yet). */
  revision: number;
  status: 'waiting' | 'applied' | 'rejected' | 'file';
  /** KV revision of the value in force (0: the node's own file), whatever the last outcome. */
  inForce: number;
  reason?: string;
  /** Sections that changed but need a restart (listeners, cache, ...): none for shared sections. */
  needRestart?: string[];
  /** Clock time (ms) of the last outcome. */
  at?: number;
}

export interface ConfigWatchOptions {
  bucket: string;
  key: string;
  log: Logger;
  now: () => number;
  /** Validates and applies sections (undefined: back to the node's own file). */
  apply: (sections: FleetSections | undefined) => ApplyOutcome;
  onOutcome?: (outcome: 'applied' | 'rejected') => void;
}

/** How often the key is read again beside the watch (see #run). */
const REREAD_MS = 5000;
const RETRY_MS = 1000;

/** Opens (or creates) the configuration bucket. */
export function openBucket(nc: NatsConnection, bucket: string): Promise<KV> {
  return new Kvm(nc).create(bucket, { history: 10 });
}

export class ConfigWatch {
  readonly #options: ConfigWatchOptions;
  readonly state: FleetConfigState;
  /** When the last value taken was written (ms), 0 when unknown. */
  #lastWritten = 0;
  #initial = false;
  #stopped = false;
  #stop: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: ConfigWatchOptions) {
    this.#options = options;
    this.state = { bucket: options.bucket, key: options.key, revision: 0, status: 'waiting', inForce: 0 };
  }

  /** Whether the value the key held at start has been seen (applied, rejected or absent). */
  get initialised(): boolean {
    return this.#initial;
  }

  start(nc: NatsConnection): void {
    this.#loop ??= this.#run(nc);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop?.();
    await this.#loop;
  }

  async #run(nc: NatsConnection): Promise<void> {
    for (let failures = 0; !this.#stopped; failures++) {
      try {
        const kv = await openBucket(nc, this.#options.bucket);
        const current = await kv.get(this.#options.key);
        if (current !== null) {
          this.#take(current.revision, current.operation, () => current.string(), current.created);
          if (!this.#initial && this.state.status === 'rejected' && this.state.inForce === 0)
            await this.#fallBack(kv, current.revision);
        }
        this.#initial = true;
        const watch = await kv.watch({ key: this.#options.key });
        this.#stop = () => watch.stop();
        if (this.#stopped) watch.stop();
        // The watch resumes after the last stream sequence it saw: a bucket made anew (the
        // server's storage lost) would not be seen until it passed that count. The key is read
        // again now and then, and a value written after the last one taken is applied.
        const reread = setInterval(() => {
          kv.get(this.#options.key).then(
            (entry) =>
              entry !== null &&
              this.#take(entry.revision, entry.operation, () => entry.string(), entry.created),
            () => {},
          );
        }, REREAD_MS);
        try {
          for await (const entry of watch) {
            if (this.#stopped) break;
            this.#take(entry.revision, entry.operation, () => entry.string(), entry.created);
          }
        } finally {
          clearInterval(reread);
        }
      } catch (error) {
        if (this.#stopped) break;
        if (failures % 10 === 0)
          this.#options.log.warn({ err: error }, 'shared configuration watch failed; watching again');
      }
      if (!this.#stopped)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RETRY_MS);
          this.#stop = () => {
            clearTimeout(timer);
            resolve();
          };
        });
    }
  }

  /**
   * At start, the key's value is rejected: the running nodes kept the last revision they could
   * apply, and this node would otherwise serve its own file's sites and origins beside them. The
   * newest older revision that applies is put in force (the status stays `rejected`, with the
   * reason); a deletion met first means the fleet was on its files, and so stays this node.
   */
  async #fallBack(kv: KV, rejected: number): Promise<void> {
    const older: { revision: number; operation: string; text: () => string }[] = [];
    for await (const entry of await kv.history({ key: this.#options.key }))
      if (entry.revision < rejected)
        older.push({ revision: entry.revision, operation: entry.operation, text: () => entry.string() });
    older.sort((a, b) => b.revision - a.revision);
    for (const entry of older) {
      if (entry.operation !== 'PUT') return;
      const parsed = parseSections(entry.text());
      if (!parsed.ok) continue;
      let outcome: ApplyOutcome;
      try {
        outcome = this.#options.apply(parsed.sections);
      } catch {
        continue;
      }
      if (!outcome.ok) continue;
      this.state.inForce = entry.revision;
      this.state.needRestart = outcome.needRestart;
      const { log, key, bucket } = this.#options;
      log.warn(
        { bucket, key, revision: entry.revision, rejected },
        'shared configuration rejected at start: the last revision that applies is in force, as on the running nodes',
      );
      return;
    }
  }

  /**
   * A value of the key: taken when its revision is higher than the last seen, or when it was
   * written after the last one taken (a bucket made anew, the server's storage lost, numbers
   * its revisions from 1 again: its values must not be skipped until it passes the old count).
   */
  #take(revision: number, operation: 'PUT' | 'DEL' | 'PURGE', text: () => string, created?: Date): void {
    const written = created?.getTime() ?? 0;
    if (revision <= this.state.revision && !(written > this.#lastWritten)) return;
    this.#lastWritten = Math.max(this.#lastWritten, written);
    const { log, key, bucket } = this.#options;
    this.state.revision = revision;
    this.state.at = this.#options.now();
    let outcome: ApplyOutcome;
    try {
      if (operation !== 'PUT') outcome = this.#options.apply(undefined);
      else {
        const parsed = parseSections(text());
        outcome = parsed.ok ? this.#options.apply(parsed.sections) : parsed;
      }
    } catch (error) {
      // Applying failed past validation: a rejection like any other, never a watch that fails
      // (the value would then be taken as seen, its outcome untold) nor a rejected promise.
      outcome = { ok: false, reason: (error as Error).message };
    }
    if (outcome.ok) {
      this.state.status = operation === 'PUT' ? 'applied' : 'file';
      this.state.inForce = operation === 'PUT' ? revision : 0;
      delete this.state.reason;
      this.state.needRestart = outcome.needRestart;
      log.info(
        { bucket, key, revision, needRestart: outcome.needRestart },
        operation === 'PUT'
          ? 'shared configuration applied'
          : 'shared configuration deleted: back to the config file',
      );
      this.#options.onOutcome?.('applied');
    } else {
      this.state.status = 'rejected';
      this.state.reason = outcome.reason;
      delete this.state.needRestart;
      log.error(
        { bucket, key, revision, reason: outcome.reason },
        'shared configuration rejected: the running configuration stays',
      );
      this.#options.onOutcome?.('rejected');
    }
  }
}
