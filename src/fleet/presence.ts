/**
 * One live node per bus name. Every node's durable consumer is named after it (`fleet.node`):
 * two running nodes under one name would bind the same consumer, and JetStream would hand each
 * purge to only one of them. So a node consumes only while it holds its name in a KV bucket
 * (`fleet.presence.bucket`, key `<stream>.<name>`): an entry with its random instance id, host,
 * pid and start time, refreshed every `fleet.presence.interval`.
 *
 * The entry is written only with the revision last read (KV create, or update with the expected
 * revision), so of two nodes starting at the same instant one only takes it. Liveness is judged
 * without comparing clocks across hosts: an entry held by another instance is that instance's
 * while its revision moves; one that has not moved for LIVE_INTERVALS intervals, as timed here,
 * is taken over. A holder that stops gives its name back (deletes the entry); a holder that
 * crashed is recognised at once by a restart on the same machine (the same cache's node id,
 * host and boot, its pid gone), else its entry is waited out.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { Pause } from '../purge/pause.ts';

/** What a holder writes under its name. */
export interface PresenceEntry {
  /** Random per process start: tells this run from any other under the name. */
  instance: string;
  /** The cache's persisted node id. */
  node: string;
  host: string;
  /** Linux's boot id: the pid is meaningful only on the same machine and boot. */
  boot?: string;
  pid: number;
  /** ISO time the holder started. */
  started: string;
}

export interface PresenceOptions {
  bucket: string;
  stream: string;
  /** The bus name (the durable consumer's name). */
  name: string;
  nodeId: string;
  intervalMs: number;
  log: Logger;
  /** Told when the node may consume (true: the name taken) or must stop (the name held by another). */
  onHold: (held: boolean) => void;
}

export interface PresenceState {
  bucket: string;
  held: boolean;
  /** The other live instance holding the name, while this node waits. */
  other?: Omit<PresenceEntry, 'boot'>;
}

/** The bound of every NATS call. */
const CALL_TIMEOUT_MS = 5000;

/** An entry whose revision has not moved for this many intervals belongs to no live node. */
export const LIVE_INTERVALS = 3;

/** Instances running in this process (tests run several nodes in one). */
const running = new Set<string>();

const BOOT = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
})();

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function decode(data: string): PresenceEntry | undefined {
  try {
    const value = JSON.parse(data) as PresenceEntry;
    return typeof value.instance === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export class Presence {
  readonly #options: PresenceOptions;
  readonly #key: string;
  readonly #self: PresenceEntry;
  readonly #pause = new Pause();
  #kv: KV | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  /** The entry's revision while this node holds the name (0: not held). */
  #revision = 0;
  /**
   * Another instance's entry as last read, and when (performance.now()) its revision last moved;
   * `free`: since found given back or stale, but this node could not write its own.
   */
  #seen: { revision: number; at: number; entry: PresenceEntry | undefined; free?: true } | undefined;
  #failures = 0;
  /** Why the bucket could not be read or written at the last interval. */
  #error: string | undefined;
  /** Holding as last told to the bus. */
  #reported = false;
  /** Every NATS call is bounded: one that hangs is given up and tried again next interval. */
  readonly #timeout: number;

  constructor(options: PresenceOptions) {
    this.#options = options;
    this.#key = `${options.stream}.${options.name}`;
    // Not tied to the interval: a call slow on a loaded machine completes, and delays one tick.
    this.#timeout = CALL_TIMEOUT_MS;
    this.#self = {
      instance: crypto.randomUUID(),
      node: options.nodeId,
      host: hostname(),
      ...(BOOT !== undefined ? { boot: BOOT } : {}),
      pid: process.pid,
      started: new Date().toISOString(),
    };
  }

  get held(): boolean {
    return this.#revision > 0;
  }

  /**
   * Whether the node may consume: it holds its name, or the bucket cannot be used (no
   * permission, the bus unreachable) and no other live holder is known: the check is then
   * skipped, as before there was one, and said in `error`.
   */
  get consuming(): boolean {
    return this.held || (this.#error !== undefined && (this.#seen === undefined || this.#seen.free === true));
  }

  /** Why the name cannot be checked (the bucket unusable), while it cannot. */
  get error(): string | undefined {
    if (this.held || this.#error === undefined) return undefined;
    return `fleet.node "${this.#options.name}" cannot be checked in bucket ${this.#options.bucket} (${this.#error}): consuming without the check that no other live node uses it`;
  }

  /** Why this node does not consume: another live instance holds its name. */
  get conflict(): string | undefined {
    if (this.held || this.#seen === undefined || this.#seen.free) return undefined;
    const other = this.#seen.entry;
    const who = other ? `${other.host} pid ${other.pid}, started ${other.started}` : 'an unreadable entry';
    return `fleet.node "${this.#options.name}" is held by another live node (${who}): this node does not consume the purge bus; give every node a unique fleet.node`;
  }

  state(): PresenceState {
    const other = this.held || this.#seen?.free ? undefined : this.#seen?.entry;
    return {
      bucket: this.#options.bucket,
      held: this.held,
      ...(other
        ? {
            other: {
              instance: other.instance,
              node: other.node,
              host: other.host,
              pid: other.pid,
              started: other.started,
            },
          }
        : {}),
    };
  }

  start(nc: NatsConnection): void {
    if (this.#stopped) return;
    running.add(this.#self.instance);
    this.#loop ??= this.#run(nc);
  }

  /** Refresh (or try to take the name) now: the connection is back. */
  wake(): void {
    this.#pause.wake();
  }

  /**
   * Stops refreshing and gives the name back, so the next node under it need not wait. From the
   * call on, this instance counts as stopped in this process: a node started in it under the
   * name takes an entry left behind (the bus gone before the delete) as its previous run's.
   * Called again, the same stop.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    running.delete(this.#self.instance);
    this.#pause.wake();
    await this.#loop;
    if (this.#kv === undefined || !this.held) return;
    await this.#kv.delete(this.#key, { previousSeq: this.#revision }).catch(() => {});
    this.#revision = 0;
  }

  async #run(nc: NatsConnection): Promise<void> {
    const { bucket, intervalMs, log } = this.#options;
    // Every call is bounded: one that hangs is given up and tried again next interval.
    while (!this.#stopped) {
      try {
        this.#kv ??= await new Kvm(jetstream(nc, { timeout: this.#timeout })).create(bucket, {
          history: 1,
          timeout: this.#timeout,
        });
        await this.#tick(this.#kv);
        this.#failures = 0;
        this.#error = undefined;
      } catch (error) {
        if (this.#stopped) break;
        this.#error = (error as Error).message;
        // Opened again at the next interval: the bucket may have gone with the server's storage.
        this.#kv = undefined;
        // Unread, the other holder's entry may have moved: its liveness is timed again from the
        // next read, so an outage longer than the bound is not taken for the holder's crash.
        if (this.#seen !== undefined && this.#seen.free !== true) this.#seen.revision = 0;
        if (this.#failures++ % 10 === 0)
          log.warn(
            { err: error, bucket },
            'fleet name: cannot refresh it in the presence bucket; trying again',
          );
      }
      if (this.#stopped) break;
      this.#report();
      await this.#pause.sleep(intervalMs);
    }
  }

  async #tick(kv: KV): Promise<void> {
    const value = JSON.stringify(this.#self);
    if (this.held) {
      try {
        this.#revision = await kv.update(this.#key, value, this.#revision);
        return;
      } catch (error) {
        // Written by another instance (it took the name while this one could not refresh it),
        // deleted by hand, or a call that failed: the entry tells which.
        const current = await kv.get(this.#key);
        if (current?.operation === 'PUT' && current.revision === this.#revision) throw error;
        this.#revision = 0;
      }
    }
    const current = await kv.get(this.#key);
    // Stopping: no name taken, no holder judged (a node started meanwhile may hold it now).
    if (this.#stopped) return;
    if (current === null || current.operation !== 'PUT')
      return this.#take(await this.#write(kv, value, 0), 'free');
    const entry = decode(current.string());
    if (entry?.instance === this.#self.instance) return this.#take(current.revision, 'free');
    if (entry !== undefined && this.#previousRun(entry))
      return this.#take(await this.#write(kv, value, current.revision), 'restart', entry);
    this.#observe(current.revision, entry);
    if (performance.now() - this.#seen!.at >= LIVE_INTERVALS * this.#options.intervalMs)
      return this.#take(await this.#write(kv, value, current.revision), 'stale', entry);
  }

  /**
   * Writes this node's entry over `revision` (0: none there): its new revision, or 0 when
   * another node wrote first (read again at the next interval).
   */
  async #write(kv: KV, value: string, revision: number): Promise<number> {
    try {
      return revision === 0
        ? await kv.create(this.#key, value)
        : await kv.update(this.#key, value, revision, this.#timeout);
    } catch (error) {
      const now = await kv.get(this.#key);
      if (now !== null && now.revision !== revision && now.operation === 'PUT') return 0;
      // Free, and not writable here (no permission...): no live node is known to hold it.
      if (this.#seen !== undefined) this.#seen.free = true;
      throw error;
    }
  }

  /** Tells the bus when it may start or must stop consuming. */
  #report(): void {
    if (this.consuming === this.#reported) return;
    this.#reported = this.consuming;
    this.#options.onHold(this.consuming);
  }

  /** The entry is this node's previous run on this machine, which has exited (a quick restart). */
  #previousRun(entry: PresenceEntry): boolean {
    const self = this.#self;
    if (entry.node !== self.node || entry.host !== self.host || entry.boot !== self.boot) return false;
    return entry.pid === self.pid ? !running.has(entry.instance) : gone(entry.pid);
  }

  /** Another instance's entry read: its revision moving means it is alive. */
  #observe(revision: number, entry: PresenceEntry | undefined): void {
    if (this.#seen?.revision === revision) return;
    const changed = this.#seen === undefined || this.#seen.entry?.instance !== entry?.instance;
    this.#seen = { revision, at: performance.now(), entry };
    if (changed) this.#options.log.error({ other: entry, name: this.#options.name }, this.conflict);
  }

  #take(revision: number, why: 'free' | 'restart' | 'stale', before?: PresenceEntry): void {
    if (revision === 0) return;
    const { log, name } = this.#options;
    this.#revision = revision;
    const waited = this.#seen !== undefined;
    this.#seen = undefined;
    if (why === 'stale')
      log.warn(
        { name, previous: before },
        'fleet name taken over: its previous holder stopped refreshing it; consuming the purge bus',
      );
    else if (why === 'restart')
      log.info({ name, previous: before?.pid }, 'fleet name taken back from this node’s previous run');
    else if (waited) log.warn({ name }, 'fleet name released by the other node; consuming the purge bus');
  }
}
