/**
 * The admin operations on a stopped node's cache directory: the CLI's `--cache-dir`. The
 * LMDB environment is opened directly and purged through the same purge service the
 * admin API uses, so an offline purge is logged too and reaches the peers when the node
 * starts again. Bodies of hard-purged entries are removed at once: nothing is reading them.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { assertNotServed, COMPACT_COPY_PREFIX, claimCacheDir } from '../cache/cache-dir.ts';
import { CacheStore } from '../cache/store.ts';
import { EdgeError } from '../errors.ts';
import type { PurgeCommand } from '../purge/command.ts';
import { type OnProgress, type PurgeResult, PurgeService } from '../purge/service.ts';
import type { SortQuery } from '../purge/targets.ts';
import {
  type InspectView,
  inspectUrl,
  type ListOptions,
  type ListView,
  listEntries,
  type StatsView,
  storeStats,
} from './cache-view.ts';

export interface OfflineCacheOptions {
  dir: string;
  /** Hosts whose site sorts its query in the cache key (from the node's config). */
  sortQueryHosts?: (host: string) => boolean;
  /** cache.maxSize, shown as the capacity in stats. */
  capacity?: number;
  batchSize?: number;
  /**
   * The tool that opens the directory to change it (`strata purge --cache-dir`): it holds the
   * directory until closed, so a node started meanwhile is refused (cache-dir.ts).
   */
  tool?: string;
}

export interface OfflineCache {
  /** `onProgress` hears how far the purge has come after each of its transactions. */
  purge(command: PurgeCommand, onProgress?: OnProgress): Promise<PurgeResult>;
  inspect(url: string): InspectView;
  list(options: ListOptions): ListView;
  stats(): StatsView;
  /** Writes a compacted copy of the environment into the directory `dir` (see `compactCacheDirectory`). */
  compactTo(dir: string): Promise<void>;
  close(): Promise<void>;
}

export function openCacheDirectory(options: OfflineCacheOptions): OfflineCache {
  // A running node's directory is its own: purge it through its admin API instead.
  assertNotServed(options.dir);
  const release = options.tool === undefined ? () => {} : claimCacheDir(options.dir, options.tool);
  const log = pino({ level: 'silent' });
  let store: CacheStore;
  try {
    store = new CacheStore({
      dir: options.dir,
      maxSize: options.capacity ?? 4 * 1024 ** 3,
      chunkSize: 256 * 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: Date.now,
      bodyGraceMs: 0,
    });
  } catch (error) {
    release();
    throw error;
  }
  const sortQuery: SortQuery = options.sortQueryHosts ?? (() => false);
  const purge = new PurgeService({
    store,
    log,
    sortQuery,
    batchSize: options.batchSize ?? 500,
    now: Date.now,
  });
  return {
    purge: (command, onProgress) => purge.purge(command, undefined, onProgress),
    inspect: (url) => inspectUrl(store, url, sortQuery, Date.now()),
    list: (listOptions) => listEntries(store, listOptions, Date.now()),
    stats: () => storeStats(store, purge.log, options.capacity ?? 4 * 1024 ** 3),
    compactTo: (target) => store.compactTo(target),
    async close() {
      try {
        await purge.drain();
        await store.close();
      } finally {
        release();
      }
    },
  };
}

export interface CompactResult {
  /** data.mdb bytes before and after. */
  before: number;
  after: number;
  /** Where the compacted environment is (the directory itself when compacted in place). */
  dir: string;
}

/**
 * `strata cache compact`: copies the environment with compaction (LMDB's data file keeps its
 * high-water size after evictions and purges), then either leaves the copy in `to` or, in place,
 * renames the compacted data file over the old one (same filesystem: one atomic rename) and
 * removes the lock file. Refuses a directory a running node serves.
 */
export async function compactCacheDirectory(dir: string, to?: string): Promise<CompactResult> {
  const dataFile = join(dir, 'data.mdb');
  if (!existsSync(dataFile))
    throw new EdgeError('EDGE_ERR_STARTUP', `cache.dir ${dir}: no data.mdb here, nothing to compact`);
  const before = statSync(dataFile).size;
  const target = to ?? join(dir, `${COMPACT_COPY_PREFIX}${process.pid}`);
  // Held until the copy has replaced the data file: a node started on the old file meanwhile
  // would lose everything it stored and purged (acknowledged purges included) to the rename.
  // Claiming removes the copies of compactions killed midway.
  const release = claimCacheDir(dir, 'strata cache compact');
  try {
    if (existsSync(join(target, 'data.mdb')))
      throw new EdgeError(
        'EDGE_ERR_STARTUP',
        `${target} already holds a data.mdb: choose an empty directory`,
      );
    const cache = openCacheDirectory({ dir });
    try {
      mkdirSync(target, { recursive: true });
      await cache.compactTo(target);
    } catch (error) {
      if (to === undefined) rmSync(target, { recursive: true, force: true });
      throw new EdgeError(
        'EDGE_ERR_STARTUP',
        `cannot compact ${dir} into ${target}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    } finally {
      await cache.close();
    }
    const after = statSync(join(target, 'data.mdb')).size;
    if (to !== undefined) return { before, after, dir: to };
    renameSync(join(target, 'data.mdb'), dataFile);
    rmSync(join(dir, 'lock.mdb'), { force: true });
    rmSync(target, { recursive: true, force: true });
    return { before, after, dir };
  } finally {
    release();
  }
}
