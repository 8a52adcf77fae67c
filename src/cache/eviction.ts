/**
 * Background upkeep of the store, run by one process per node: flushes access times,
 * evicts least-recently-used variants before cache.maxSize is reached, and sweeps
 * body chunks that no record references (left by a crash or a shutdown mid-fill).
 */
import { setImmediate as yieldToEvents } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CacheStore } from './store.ts';

export interface EvictionOptions {
  maxSize: number;
  /** Start evicting above this fraction of maxSize … */
  highWater?: number;
  /** … and stop below this one. */
  lowWater?: number;
  intervalMs?: number;
  /**
   * How often the accounted bytes are looked at between passes: fills faster than maxSize per
   * interval start a pass early instead of passing maxSize until the next one.
   */
  watchMs?: number;
  log: Logger;
  onEvict?: (count: number, bytes: number) => void;
}

const BATCH = 500;
/** Records read per slice of the startup scan; the event loop runs between slices. */
const SCAN_SLICE = 10_000;
/** Least time between two progress lines of the startup scan. */
const SCAN_PROGRESS_MS = 5000;

export class Evictor {
  readonly #store: CacheStore;
  readonly #options: Required<Omit<EvictionOptions, 'onEvict'>> & Pick<EvictionOptions, 'onEvict'>;
  #timer: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(store: CacheStore, options: EvictionOptions) {
    this.#store = store;
    this.#options = { highWater: 0.9, lowWater: 0.8, intervalMs: 2000, watchMs: 200, ...options };
  }

  start(): void {
    this.#timer = setInterval(() => void this.runOnce(), this.#options.intervalMs);
    this.#timer.unref();
    this.#watch = setInterval(() => {
      if (this.#running === undefined && this.over()) void this.runOnce();
    }, this.#options.watchMs);
    this.#watch.unref();
  }

  stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#watch) clearInterval(this.#watch);
    this.#timer = undefined;
    this.#watch = undefined;
    return this.#running ?? Promise.resolve();
  }

  /** Whether the accounted bytes (bodies in their grace period included) are past the high-water mark. */
  over(): boolean {
    if (this.#store.closed) return false;
    return (
      this.#store.accountedBytes() + this.#store.graceBytes > this.#options.maxSize * this.#options.highWater
    );
  }

  /** One pass: flush access times, then evict if above the high-water mark. */
  runOnce(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.#pass()
      .catch((error: unknown) => this.#options.log.error({ err: error }, 'eviction pass failed'))
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #pass(): Promise<void> {
    if (this.#store.closed) return;
    await this.#store.flushAccess();
    // Bodies in their grace period still take their space on disk: counted, so the file stays
    // near maxSize under churn (store.ts graceBytes) — down to half the low-water mark of live
    // entries: past that much churn the file may pass maxSize rather than the cache keep nothing.
    const grace = this.#store.graceBytes;
    const bytes = this.#store.accountedBytes();
    const { maxSize, highWater, lowWater } = this.#options;
    if (bytes + grace <= maxSize * highWater) return;
    await this.evictTo(Math.max((maxSize * lowWater) / 2, maxSize * lowWater - grace));
  }

  /**
   * Removes least-recently-used variants until the accounted bytes are at most `target`. The
   * order comes from the store's access-order index a batch at a time: a pass reads what it
   * evicts (and a batch more at most), never every record.
   */
  async evictTo(target: number): Promise<void> {
    let bytes = this.#store.usage().bytes;
    let evicted = 0;
    let freed = 0;
    let after: { id: string; time: number } | undefined;
    // Bounded: every round either evicts or moves the cursor past a batch of the index.
    for (let round = 0; bytes > target && round < 1_000_000; round++) {
      if (this.#store.closed) return;
      const candidates = this.#store.evictionOrder({ ...(after ? { after } : {}), limit: BATCH });
      if (candidates.length === 0) break;
      const batch: string[] = [];
      for (const candidate of candidates) {
        if (bytes <= target) break;
        batch.push(candidate.id);
        bytes -= candidate.cost;
        freed += candidate.cost;
      }
      const last = candidates[batch.length - 1] ?? candidates.at(-1)!;
      after = { id: last.id, time: last.time };
      evicted += await this.#store.write(() => {
        let count = 0;
        for (const id of batch) count += this.#store.evictRepresentationsInTxn(id);
        return count;
      });
      // Representations evicted together free more than their candidate's cost.
      const now = this.#store.usage().bytes;
      if (now < bytes) {
        freed += bytes - now;
        bytes = now;
      }
    }
    if (evicted > 0) {
      this.#options.log.info({ evicted, freed }, 'evicted least recently used entries');
      this.#options.onEvict?.(evicted, freed);
    }
  }

  /**
   * Removes chunks whose body no record references and which were written before
   * `before` (ms): bodies of fills still running are younger than the node's start. Runs at
   * startup over every record, in slices with the event loop free between them, and logs its
   * progress (records checked of the total, rate) every `progressEveryMs` (default 5 s) once it
   * has run that long.
   */
  async sweepOrphans(before: number, progressEveryMs = SCAN_PROGRESS_MS): Promise<number> {
    const started = performance.now();
    const { referenced, damaged, scanned } = await this.#scanRecords(started, progressEveryMs);
    if (damaged.length > 0) {
      this.#options.log.error({ entries: damaged.length }, 'removed cache records that do not decode');
      await this.#store.write(() => {
        for (const key of damaged) this.#store.dropInTxn(key);
      });
    }
    const orphans: Array<[string, number]> = [];
    for (const key of this.#store.chunkKeys()) {
      const [bodyId] = key;
      if (referenced.has(bodyId)) continue;
      const created = Number.parseInt(bodyId.split('.')[0] ?? '', 36);
      if (Number.isFinite(created) && created < before) orphans.push(key);
    }
    await this.removeChunks(orphans);
    const ms = performance.now() - started;
    if (ms >= progressEveryMs)
      this.#options.log.info({ records: scanned, ms: Math.round(ms) }, 'startup scan done');
    return orphans.length;
  }

  /**
   * The chunks of bodies a process that is gone made (their ids carry `madeBy`,
   * CacheStore.bodyIdPrefix) that no record references: fills it left unfinished, bodies its
   * timers were to remove. Nothing makes them referenced again; bodies that lose their record
   * later are not among them (another process may still be reading those in their grace period).
   */
  async orphansOf(madeBy: string): Promise<Array<[string, number]>> {
    const { referenced } = await this.#scanRecords(performance.now(), Number.POSITIVE_INFINITY);
    const found: Array<[string, number]> = [];
    for (const key of this.#store.chunkKeys()) {
      const [bodyId] = key;
      const dot = bodyId.indexOf('.');
      if (dot !== -1 && bodyId.startsWith(madeBy, dot + 1) && !referenced.has(bodyId)) found.push(key);
    }
    return found;
  }

  /** Removes chunks by key (orphans), in batches; resolves with how many. */
  async removeChunks(keys: Array<[string, number]>): Promise<number> {
    for (let i = 0; i < keys.length && !this.#store.closed; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      await this.#store.write(() => this.#store.removeChunksInTxn(batch));
    }
    if (keys.length > 0) this.#options.log.info({ chunks: keys.length }, 'swept orphaned body chunks');
    return keys.length;
  }

  /** Every record's body id (and the records that do not decode), read slice by slice. */
  async #scanRecords(
    started: number,
    progressEveryMs: number,
  ): Promise<{ referenced: Set<string>; damaged: string[]; scanned: number }> {
    const referenced = new Set<string>();
    const damaged: string[] = [];
    const total = this.#store.countKeys('');
    let scanned = 0;
    let after: string | undefined;
    let reported = started;
    for (let slice = 0; slice <= total / SCAN_SLICE + 1000 && !this.#store.closed; slice++) {
      const keys = [
        ...this.#store.keys(after === undefined ? { limit: SCAN_SLICE } : { after, limit: SCAN_SLICE }),
      ];
      for (const key of keys) {
        // One by one: a record that does not decode (a damaged store) is removed, not fatal.
        try {
          const value = this.#store.current(key);
          if (value?.kind === 'entry') referenced.add(value.bodyId);
        } catch {
          damaged.push(key);
        }
      }
      scanned += keys.length;
      if (keys.length < SCAN_SLICE) break;
      after = keys[keys.length - 1];
      const now = performance.now();
      if (now - reported >= progressEveryMs) {
        reported = now;
        const rate = Math.round((scanned / (now - started)) * 1000);
        this.#options.log.info(
          { scanned, total: Math.max(total, scanned), rate },
          'startup scan: checking stored records',
        );
      }
      await yieldToEvents();
    }
    return { referenced, damaged, scanned };
  }
}
