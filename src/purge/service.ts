/**
 * The purge service: applies purge commands to the store, one at a time, in order.
 *
 * A purge runs as a series of short write transactions (see walk.ts). The first appends
 * the command to the durable purge log; the last marks it applied; every one of them
 * increments `meta.purgeSeq`, which a fill compares at commit: a fill that began before
 * a purge and ends after it commits nothing, so a purge never lets old content back in.
 * The caller is answered once the last transaction is flushed to disk.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToEvents } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FillPurge } from '../cache/collapse.ts';
import { META } from '../cache/meta-keys.ts';
import type { CacheStore } from '../cache/store.ts';
import { EdgeError } from '../errors.ts';
import { describePurge, type Forwarded, originOf, type PurgeCommand, type PurgeOrigin } from './command.ts';
import { type LoggedPurge, PurgeLog } from './purge-log.ts';
import { fillTargets, type KeyedTarget, type SortQuery } from './targets.ts';
import { PurgeWalk } from './walk.ts';

export interface PurgeResult {
  /** Variants removed (hard) or newly marked stale (soft). */
  purged: number;
  soft: boolean;
  /** The purge's sequence in this node's purge log. */
  sequence: number;
  /** Present only when nothing matched: what that may mean (the rest of the answer is unchanged). */
  warning?: string;
}

/** How far a running purge has come, reported after each of its write transactions. */
export interface PurgeProgress {
  /** Keys visited so far (URL keys, record keys under a prefix, tag index entries). */
  visited: number;
  /** What the purge will visit, counted as it started (an estimate: fills add to it). */
  total: number;
  /** Variants removed or newly marked stale so far. */
  purged: number;
  /** Wall time since the purge started (ms; a measure of speed, not cache time). */
  elapsedMs: number;
}

export type OnProgress = (progress: PurgeProgress) => void;

export interface PurgeServiceOptions {
  store: CacheStore;
  log: Logger;
  /** Whether the site for a host sorts its query in the cache key. */
  sortQuery: SortQuery;
  /** The target as the site for a host keys it (its rules' cacheKey.query). */
  keyedTarget?: KeyedTarget;
  /** Most keys visited per write transaction. */
  batchSize: number;
  /** Longest a write transaction's callback may run (ms) before the rest waits for the next one. Default 8. */
  maxStepMs?: number;
  now: () => number;
  /**
   * Called as a purge starts, before it is acknowledged: fills running for what it covers must
   * take no new readers (a request after the acknowledgement never reads content it purged).
   */
  onFills?: (purge: FillPurge) => void;
  /** Called after each purge is applied (metrics). */
  onPurge?: (command: PurgeCommand, result: PurgeResult, forwarded: boolean) => void;
  /**
   * The node's configured name (fleet.node, else tiers.id), when it has one: a cache
   * directory last used under another name (copied from another node) gets a new id.
   */
  identity?: string | undefined;
}

/**
 * The warning of a purge that matched nothing: usually a URL spelled differently from what
 * clients request (another host, port, encoding or query order), or a tag never sent.
 */
export function nothingMatched(command: PurgeCommand): string {
  const what = command.soft ? 'no stored entry was newly marked stale' : 'no stored entry was removed';
  const hints: string[] = [];
  if (command.urls.length > 0 || command.prefixes.length > 0)
    hints.push('URLs and prefixes match both schemes; check the host, port, path encoding and query order');
  if (command.tags.length > 0) hints.push('tags match only responses that carried them');
  if (command.soft) hints.push('entries already marked stale are not counted again');
  return `nothing matched: ${what}${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`;
}

/** Hits wait while a purge step runs: keep each step short. */
const MAX_STEP_MS = 8;

export class PurgeService {
  readonly log: PurgeLog;
  /** This cache's id, persisted with it: names it in forwarded purges. */
  readonly nodeId: string;
  readonly #options: PurgeServiceOptions;
  readonly #appended = new Set<() => void>();
  #queue: Promise<unknown> = Promise.resolve();
  #running = 0;

  constructor(options: PurgeServiceOptions) {
    this.#options = options;
    this.log = new PurgeLog(options.store);
    const store = options.store;
    let id = store.readMeta(META.nodeId) as string | undefined;
    // A cache directory copied from another node carries that node's id: the two would take
    // each other's purges for their own (skipped) and publish theirs under one id (dropped as
    // duplicates). Known by the name it was last used under; the new name gets a new id.
    const identity = options.identity;
    const before = store.readMeta(META.nodeIdentity) as string | undefined;
    if (id !== undefined && identity !== undefined && before !== undefined && before !== identity) {
      options.log.warn(
        { cacheWasUsedBy: before, node: identity },
        'this cache directory was last used by another node: it gets an id of its own',
      );
      id = undefined;
    }
    if (id === undefined) {
      id = randomUUID();
      store.writeMetaSync(META.nodeId, id);
    }
    if (identity !== undefined && before !== identity) store.writeMetaSync(META.nodeIdentity, identity);
    this.nodeId = id;
  }

  /** Registers a listener told whenever a purge is appended (wakes the fan-out). */
  onAppended(listener: () => void): () => void {
    this.#appended.add(listener);
    return () => this.#appended.delete(listener);
  }

  /**
   * The highest sequence of a purge origin (a node id, a bus stream) fully applied on this node:
   * 0 when none. One synchronous LMDB read, shared by the node's workers.
   */
  appliedFrom(origin: string): number {
    return (this.#options.store.readMeta(`${META.purgeOriginPrefix}${origin}`) as number | undefined) ?? 0;
  }

  /** Purges still queued or running in this process. */
  get pending(): number {
    return this.#running;
  }

  /**
   * Applies a purge and resolves once it is durable and applied on this node. A purge
   * forwarded by a peer that already passed through this node, or that this node already
   * applied (the sender retried), is acknowledged without applying it again.
   */
  purge(command: PurgeCommand, forwarded?: Forwarded, onProgress?: OnProgress): Promise<PurgeResult> {
    this.#running++;
    const run = this.#queue.then(() => this.#purge(command, forwarded, onProgress));
    this.#queue = run.catch(() => {});
    return run.finally(() => this.#running--);
  }

  /**
   * Applies again the logged purges a crash left unapplied. Returns how many. `onProgress`
   * (startup: a log line every few seconds) hears how far each has come.
   */
  async recover(onProgress?: (sequence: number, progress: PurgeProgress) => void): Promise<number> {
    const unapplied = this.log.unapplied();
    for (const { sequence, entry } of unapplied) {
      this.#options.log.warn(
        { sequence, purge: describePurge(entry.command) },
        'finishing an interrupted purge',
      );
      const report = onProgress && ((progress: PurgeProgress) => onProgress(sequence, progress));
      const origin = entry.origin ?? { node: this.nodeId, sequence };
      const run = this.#queue.then(() => this.#apply(entry.command, sequence, origin, undefined, report));
      this.#queue = run.catch(() => {});
      await run;
    }
    return unapplied.length;
  }

  /** Waits for every queued purge. */
  async drain(): Promise<void> {
    for (let round = 0; round < 100 && this.#running > 0; round++) await this.#queue;
  }

  async #purge(
    command: PurgeCommand,
    forwarded: Forwarded | undefined,
    onProgress: OnProgress | undefined,
  ): Promise<PurgeResult> {
    const store = this.#options.store;
    const origin = forwarded && originOf(forwarded);
    if (forwarded !== undefined && origin !== undefined) {
      const seen = store.readMeta(`${META.purgeFromPrefix}${forwarded.node}`) as number | undefined;
      // Already applied: a retried delivery, the purge's own way back, or a copy that took
      // another path from its origin (each path delivers an origin's purges in order).
      const covered = [origin, ...(forwarded.covers ?? [])];
      if (
        forwarded.path.includes(this.nodeId) ||
        (seen !== undefined && forwarded.sequence <= seen) ||
        covered.every((one) => one.sequence <= this.appliedFrom(one.node))
      ) {
        // Delivered: the sender's later deliveries of it (a bus replaying) are known as such.
        if (seen === undefined || forwarded.sequence > seen)
          await store.writeMeta(`${META.purgeFromPrefix}${forwarded.node}`, forwarded.sequence);
        return { purged: 0, soft: command.soft, sequence: this.log.sequence };
      }
    }
    const entry: LoggedPurge = {
      command,
      at: this.#options.now(),
      path: forwarded ? forwarded.path : [],
      ...(origin ? { origin } : {}),
      ...(forwarded?.covers?.length ? { covers: forwarded.covers } : {}),
      applied: false,
    };
    const applied = await this.#apply(command, undefined, origin, { entry, forwarded }, onProgress).catch(
      async (error: unknown) => {
        throw await this.#refusal(error);
      },
    );
    const result = applied.purged === 0 ? { ...applied, warning: nothingMatched(command) } : applied;
    for (const listener of this.#appended) listener();
    this.#options.onPurge?.(command, result, forwarded !== undefined);
    this.#options.log.info(
      { sequence: result.sequence, purged: result.purged, from: forwarded?.node },
      describePurge(command),
    );
    return result;
  }

  /**
   * Runs the walk in batches; `append` is given for a new purge, `logged` for a recovered one.
   * `origin`: the purge's fleet identity (undefined: this node, with the sequence it gets here),
   * recorded as applied in the last transaction.
   */
  async #apply(
    command: PurgeCommand,
    logged: number | undefined,
    origin: PurgeOrigin | undefined,
    append: { entry: LoggedPurge; forwarded: Forwarded | undefined } | undefined,
    onProgress?: OnProgress,
  ): Promise<PurgeResult> {
    const store = this.#options.store;
    const targets = fillTargets(command, this.#options.sortQuery, this.#options.keyedTarget);
    const walk = new PurgeWalk(
      store,
      command.soft,
      [...targets.keys],
      [...targets.prefixes],
      [...targets.tags],
    );
    this.#options.onFills?.(targets);
    const started = performance.now();
    const total = onProgress ? walk.estimate() : 0;
    const report = () =>
      onProgress?.({
        visited: walk.visited,
        total: Math.max(total, walk.visited),
        purged: walk.purged,
        elapsedMs: performance.now() - started,
      });
    // Reported after each write transaction, never before the first: the admin API answers its
    // 200 with the first progress line, and by then the purge is logged and flushed.
    let sequence = logged ?? 0;
    let first = true;
    for (;;) {
      const done = await store.write(() => {
        store.bumpPurgeGenerationInTxn();
        // The first step runs before the purge is logged: lmdb-js commits what a callback wrote
        // before it threw, and a failing first step must leave no logged, unapplied purge nor a
        // sender's sequence marked as received (its retry would be skipped as already applied).
        const finished = walk.stepInTxn(this.#options.batchSize, this.#options.maxStepMs ?? MAX_STEP_MS);
        if (first && append) {
          sequence = this.log.appendInTxn(append.entry);
          if (append.forwarded)
            void store.writeMeta(
              `${META.purgeFromPrefix}${append.forwarded.node}`,
              append.forwarded.sequence,
            );
        }
        if (finished) {
          this.log.markAppliedInTxn(sequence);
          this.#noteAppliedInTxn(origin ?? { node: this.nodeId, sequence });
          for (const covered of append?.entry.covers ?? []) this.#noteAppliedInTxn(covered);
        }
        return finished;
      });
      if (first && append) await store.flushed();
      first = false;
      report();
      if (done) break;
      // Let hits and other I/O run between batches.
      await yieldToEvents();
    }
    await store.flushed();
    return { purged: walk.purged, soft: command.soft, sequence };
  }

  /**
   * A purge that failed because the store refuses writes (a full disk or map, an I/O error), as
   * the caller should read it: what failed and when to send it again, not an internal error.
   */
  async #refusal(error: unknown): Promise<unknown> {
    const store = this.#options.store;
    // lmdb-js gives the commit's own reason (ENOSPC...) through this promise: the store reads it.
    const commit = (error as { commitError?: Promise<unknown> } | undefined)?.commitError;
    if (commit !== undefined && typeof commit.catch === 'function') await commit.catch(() => {});
    if (!store.refusingWrites) return error;
    return new EdgeError(
      'EDGE_ERR_STORE_WRITE',
      `purge not completed: the cache store refuses writes (${store.writeError ?? 'write failed'}); send it again once the store has room (a running node's GET /healthz says ok)`,
      { cause: error },
    );
  }

  /** Inside the purge's last write transaction: raises its origin's applied sequence. */
  #noteAppliedInTxn(origin: PurgeOrigin): void {
    if (origin.sequence > this.appliedFrom(origin.node))
      void this.#options.store.writeMeta(`${META.purgeOriginPrefix}${origin.node}`, origin.sequence);
  }
}
