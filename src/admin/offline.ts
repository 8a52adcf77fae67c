/**
 * The admin operations on a stopped node's cache directory: the CLI's `--cache-dir`. The
 * LMDB environment is opened directly and purged through the same purge service the
 * admin API uses, so an offline purge is logged too and reaches the peers when the node
 * starts again. Bodies of hard-purged entries are removed at once: nothing is reading them.
 */
import { pino } from 'pino';
import { CacheStore } from '../cache/store.ts';
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
}

export interface OfflineCache {
  /** `onProgress` hears how far the purge has come after each of its transactions. */
  purge(command: PurgeCommand, onProgress?: OnProgress): Promise<PurgeResult>;
  inspect(url: string): InspectView;
  list(options: ListOptions): ListView;
  stats(): StatsView;
  close(): Promise<void>;
}

export function openCacheDirectory(options: OfflineCacheOptions): OfflineCache {
  const log = pino({ level: 'silent' });
  const store = new CacheStore({
    dir: options.dir,
    maxSize: options.capacity ?? 4 * 1024 ** 3,
    chunkSize: 256 * 1024,
    memorySize: 0,
    memoryObjectSize: 0,
    log,
    now: Date.now,
    bodyGraceMs: 0,
  });
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
    async close() {
      await purge.drain();
      await store.close();
    },
  };
}
