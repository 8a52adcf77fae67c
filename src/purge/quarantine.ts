/**
 * Startup recovery that cannot brick the node. The purge service re-applies the purges a crash
 * left unapplied; a purge that fails again (a command it cannot read, a walk that throws) used
 * to stay in the log and end every start. Here it is quarantined instead: marked in the log and
 * listed in /stats, logged with EDGE_ERR_PURGE_QUARANTINED, and whatever it names that can be
 * read is marked stale item by item (a soft purge: served only while revalidating), so content
 * it was meant to remove is not served as fresh. The node then starts.
 */
import type { Logger } from 'pino';
import type { CacheStore } from '../cache/store.ts';
import { EdgeError } from '../errors.ts';
import { describePurge, hostKey, type PurgeCommand, parsePurgeBody } from './command.ts';
import type { LoggedPurge, PurgeLog } from './purge-log.ts';
import type { PurgeProgress, PurgeService } from './service.ts';
import { hostPrefixes, keyOfPrefix, type SortQuery, storageKeyOfUrl } from './targets.ts';
import { PurgeWalk } from './walk.ts';

/** Purges quarantined in one start at most (each failure sets one aside and tries again). */
const MAX_ROUNDS = 1000;
/** Write transactions per soft purge of one quarantined item, at most. */
const MAX_STEPS = 10_000;

export interface RecoveryOptions {
  service: PurgeService;
  store: CacheStore;
  log: Logger;
  sortQuery: SortQuery;
  batchSize: number;
  now: () => number;
}

/** Least time between two progress lines of an interrupted purge finished at startup. */
const PROGRESS_MS = 5000;

/**
 * Finishes interrupted purges; quarantines each one that fails. Returns how many were set aside.
 * A long one logs its progress every `progressEveryMs` (default 5 s).
 */
export async function recoverPurges(
  options: RecoveryOptions,
  progressEveryMs = PROGRESS_MS,
): Promise<number> {
  let quarantined = 0;
  let reported = performance.now();
  const onProgress = (sequence: number, progress: PurgeProgress) => {
    const now = performance.now();
    if (now - reported < progressEveryMs || progress.visited === 0) return;
    reported = now;
    const rate = Math.round((progress.visited / Math.max(1, progress.elapsedMs)) * 1000);
    options.log.info(
      { sequence, visited: progress.visited, total: progress.total, purged: progress.purged, rate },
      'finishing an interrupted purge: progress',
    );
  };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    try {
      await options.service.recover(onProgress);
      return quarantined;
    } catch (error) {
      const [first] = options.service.log.unapplied();
      if (first === undefined) throw error;
      await quarantine(options, first.sequence, first.entry, error);
      quarantined++;
    }
  }
  return quarantined;
}

/** One line naming a logged command, also when it cannot be read. */
export function describeLogged(command: unknown): string {
  try {
    return describePurge(command as PurgeCommand);
  } catch {
    return `unreadable purge ${JSON.stringify(command)?.slice(0, 200)}`;
  }
}

async function quarantine(
  options: RecoveryOptions,
  sequence: number,
  entry: LoggedPurge,
  error: unknown,
): Promise<void> {
  const reason = error instanceof Error ? error.message : String(error);
  const purge = describeLogged(entry.command);
  const failure = new EdgeError(
    'EDGE_ERR_PURGE_QUARANTINED',
    'a logged purge could not be applied; it is quarantined and what it names is marked stale',
    { cause: error },
  );
  options.log.error({ code: failure.code, sequence, purge, reason }, failure.message);
  const log: PurgeLog = options.service.log;
  await options.store.write(() =>
    log.quarantineInTxn(sequence, entry, { sequence, purge, reason, at: options.now() }),
  );
  const stale = await markStale(options, entry.command);
  options.log.warn({ sequence, stale }, 'entries named by the quarantined purge marked stale');
}

/** The lists of a logged command that can be read, each on its own (a broken one is left out). */
function readableParts(command: unknown): PurgeCommand {
  const c = (typeof command === 'object' && command !== null ? command : {}) as Record<string, unknown>;
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  const part = (name: string) => {
    const parsed = parsePurgeBody({ [name]: strings(c[name]) });
    return parsed.ok ? parsed.command : undefined;
  };
  return {
    urls: part('urls')?.urls ?? [],
    prefixes: part('prefixes')?.prefixes ?? [],
    tags: part('tags')?.tags ?? [],
    hosts: part('hosts')?.hosts ?? [],
    all: c.all === true,
    soft: true,
  };
}

/** Soft-purges every item of the command that can be read, one at a time; errors skip an item. */
async function markStale(options: RecoveryOptions, command: unknown): Promise<number> {
  const { store, sortQuery } = options;
  const walks: Array<() => PurgeWalk> = [];
  const c = readableParts(command);
  if (c.all) walks.push(() => new PurgeWalk(store, true, [], [''], []));
  for (const url of c.urls) {
    const key = storageKeyOfUrl(url, sortQuery);
    if (key !== undefined) walks.push(() => new PurgeWalk(store, true, [key], [], []));
  }
  for (const prefix of c.prefixes) {
    const key = keyOfPrefix(prefix);
    if (key !== undefined) walks.push(() => new PurgeWalk(store, true, [], [key], []));
  }
  for (const host of c.hosts ?? []) {
    const parsed = hostKey(host);
    if (parsed !== undefined) walks.push(() => new PurgeWalk(store, true, [], hostPrefixes(parsed), []));
  }
  for (const tag of c.tags) walks.push(() => new PurgeWalk(store, true, [], [], [tag]));
  let stale = 0;
  for (const make of walks) {
    try {
      const walk = make();
      for (let step = 0; step < MAX_STEPS; step++) {
        const done = await store.write(() => {
          store.bumpPurgeGenerationInTxn();
          return walk.stepInTxn(options.batchSize);
        });
        if (done) break;
      }
      stale += walk.purged;
    } catch (error) {
      options.log.warn({ err: error }, 'an item of the quarantined purge could not be marked stale');
    }
  }
  return stale;
}
