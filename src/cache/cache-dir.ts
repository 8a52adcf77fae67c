/**
 * The cache directory before LMDB opens it, and who holds it.
 *
 * `prepareCacheDir` makes sure the directory is one a node can use, with one clear line when it
 * is not: a file in its place, a parent that cannot be created, a directory that cannot be
 * written, a virtual filesystem (/proc, /sys: Node's recursive mkdir spins forever there, so the
 * directory is created one level at a time).
 *
 * `claimCacheDir` records the serving node in `strata.pid` (pid, host, start time); offline tools
 * (`strata purge --cache-dir`, `strata cache … --cache-dir`, `strata cache compact`) refuse a
 * directory whose recorded node is alive. The tools that write (an offline purge, a compaction)
 * claim it the same way, naming themselves, for as long as they work: a node started meanwhile
 * is refused (a compaction renames its copy over the data file a node would have opened, and
 * what that node stored or purged was lost with the old file). A crash cannot leave the claim
 * standing: a pid that is no longer alive (or alive as another program) does not count, and the
 * next node replaces it.
 */
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EdgeError } from '../errors.ts';

export const PID_FILE = 'strata.pid';

/** statfs magic numbers of filesystems that hold no files of their own. */
const VIRTUAL_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
]);

function fail(dir: string, what: string): never {
  throw new EdgeError('EDGE_ERR_STARTUP', `cache.dir ${dir}: ${what}`);
}

/** Creates the directory (one level at a time) and checks it can hold a cache. */
export function prepareCacheDir(dir: string): void {
  const path = resolve(dir);
  const missing: string[] = [];
  let existing = path;
  // Bounded by the depth of the path: each step goes one level up.
  for (let depth = 0; !existsSync(existing) && depth < 256; depth++) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(existing);
  } catch (error) {
    fail(dir, `cannot be examined (${(error as NodeJS.ErrnoException).code})`);
  }
  if (!stats.isDirectory())
    fail(dir, existing === path ? 'is a file, not a directory' : `${existing} is a file, not a directory`);
  const type = VIRTUAL_FILESYSTEMS.get(Number(statfsSync(existing).type));
  if (type !== undefined) fail(dir, `is on a ${type} filesystem (${existing}), which cannot hold a cache`);
  for (const level of missing) {
    try {
      mkdirSync(level);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') fail(dir, `cannot create ${level} (${code})`);
    }
  }
  const probe = join(path, `.strata-write-test-${process.pid}`);
  try {
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
  } catch (error) {
    fail(dir, `is not writable (${(error as NodeJS.ErrnoException).code})`);
  }
}

interface Claim {
  pid: number;
  host: string;
  started: string;
  /** The offline tool holding the directory (absent: a serving node). */
  tool?: string;
}

function readClaim(dir: string): Claim | undefined {
  try {
    const claim = JSON.parse(readFileSync(join(dir, PID_FILE), 'utf8')) as Partial<Claim>;
    if (typeof claim.pid !== 'number' || typeof claim.host !== 'string') return undefined;
    const found: Claim = { pid: claim.pid, host: claim.host, started: String(claim.started ?? '') };
    if (typeof claim.tool === 'string') found.tool = claim.tool;
    return found;
  } catch {
    return undefined;
  }
}

/** Whether the pid is a live process of this machine that is a Strata node (where /proc says). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // A recycled pid now running another program does not hold the directory.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('strata');
  } catch {
    return true;
  }
}

/** Why this directory must not be touched by an offline tool, or undefined when it is free. */
export function heldBy(dir: string): string | undefined {
  const claim = readClaim(dir);
  if (claim === undefined || claim.pid === process.pid) return undefined;
  const file = join(dir, PID_FILE);
  const who = claim.tool === undefined ? 'a node' : `\`${claim.tool}\``;
  const holds = claim.tool === undefined ? 'serves it; stop that node first' : 'works on it; let it finish';
  if (claim.host !== hostname())
    return `${file} says ${who} on host ${claim.host} (pid ${claim.pid}, started ${claim.started}) ${holds} (if it is already stopped, remove ${file})`;
  if (!alive(claim.pid)) return undefined;
  if (claim.tool !== undefined)
    return `\`${claim.tool}\` (pid ${claim.pid}, started ${claim.started}) is working on it; wait for it to finish`;
  return `a running node (pid ${claim.pid}, started ${claim.started}) serves it; stop it first, or use its admin API (--admin URL)`;
}

/** Refuses a directory a running node serves (offline tools call this before they open it). */
export function assertNotServed(dir: string): void {
  const why = heldBy(dir);
  if (why !== undefined) fail(dir, why);
}

/**
 * Records this process as the node serving the directory (or, with `tool`, as that offline tool
 * working on it); refuses when another live node or tool holds it. Returns the release (removes
 * the record if it is still this process's).
 *
 * Atomic: the record is written whole to a file of this process and linked into place, which
 * fails when a record is there. Of two processes claiming at the same instant, one links and the
 * other finds the first's record and is refused. A record that holds nothing (a dead pid) is
 * removed under `strata.pid.break`, taken with an exclusive create, and only if it is still the
 * record that holds nothing: a claim made meanwhile is never removed.
 */
export function claimCacheDir(dir: string, tool?: string): () => void {
  const file = join(dir, PID_FILE);
  const claim: Claim = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  if (tool !== undefined) claim.tool = tool;
  const mine = join(dir, `${PID_FILE}.${process.pid}`);
  writeFileSync(mine, `${JSON.stringify(claim)}\n`);
  try {
    for (let attempt = 0; !linked(mine, file); attempt++) {
      const why = heldBy(dir);
      if (why !== undefined) fail(dir, why);
      if (attempt === CLAIM_ATTEMPTS)
        fail(dir, `${file} keeps being replaced by other processes; is something else starting nodes on it?`);
      breakStaleClaim(file, dir);
    }
  } finally {
    removeQuietly(mine);
  }
  removeUnfinishedCopies(dir);
  return () => {
    if (readClaim(dir)?.pid !== process.pid) return;
    removeQuietly(file);
  };
}

/** Tries to put a stale claim out of the way before claiming again, at most this many times. */
const CLAIM_ATTEMPTS = 50;
/** A breaker older than this was left by a process that died holding it. */
const BREAKER_STALE_MS = 5000;

/** Links `from` as `to`; false when `to` exists. Filesystems without hard links: exclusive create. */
function linked(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw error;
  }
  try {
    writeFileSync(to, readFileSync(from), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Removes the claim at `file` if, under the breaker, it still holds nothing. */
function breakStaleClaim(file: string, dir: string): void {
  const breaker = `${file}.break`;
  let fd: number;
  try {
    fd = openSync(breaker, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another process is breaking it: wait for it, then look again.
    try {
      if (Date.now() - statSync(breaker).mtimeMs > BREAKER_STALE_MS) unlinkSync(breaker);
    } catch {
      // gone meanwhile
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    return;
  }
  try {
    if (heldBy(dir) === undefined) removeQuietly(file);
  } finally {
    closeSync(fd);
    removeQuietly(breaker);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Where `strata cache compact` writes its copy before it replaces data.mdb (admin/offline.ts). */
export const COMPACT_COPY_PREFIX = '.compact-';

/**
 * Removes the copies of compactions that never finished (killed midway: nothing else removes
 * them, and each is as large as it got, up to the cache itself). Called by whoever just claimed
 * the directory: no other compaction can be working on it then.
 */
function removeUnfinishedCopies(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(COMPACT_COPY_PREFIX)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
