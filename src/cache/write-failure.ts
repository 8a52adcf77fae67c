import { statfsSync } from 'node:fs';

/**
 * A failed write as an operator reads it: a full disk (LMDB often reports it as an I/O error, so
 * the file system's free space decides) or map asks for room, a damaged file for the node to be
 * stopped and the cache moved aside (it refills from the origins), anything else for what LMDB or
 * the system said.
 */
export function writeFailure(error: unknown, dir: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/ENOSPC|no space left/i.test(message) || freeBytes(dir) < LOW_DISK_BYTES) return 'disk full';
  if (/MDB_MAP_FULL/.test(message)) return 'LMDB map full';
  if (/MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_TXN|wrong type|MDB_INVALID/i.test(message))
    return `the cache file is damaged (${message}): stop the node and move the cache directory aside`;
  return message;
}

/** Free space below which a failed write is put down to a full disk. */
const LOW_DISK_BYTES = 4 * 1024 * 1024;

function freeBytes(dir: string): number {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
