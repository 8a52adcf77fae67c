/**
 * Checks an LMDB data file before it is opened. LMDB maps the file into memory and trusts it:
 * a file of random bytes ends the process with SIGSEGV and a truncated one with SIGBUS, both
 * without a word. Reading the two meta pages first (magic, format version, page size, last
 * page) turns the common damage into one clear line instead. Deeper damage inside the B-tree
 * cannot be seen here; records and chunks carry checksums for that (integrity.ts).
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeError } from '../errors.ts';

/** LMDB's MDB_MAGIC and MDB_DATA_VERSION (liblmdb/mdb.c, as built into lmdb-js). */
const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
/** Offsets in a meta page on a 64-bit build: page header (24 bytes), then MDB_meta. */
const FLAGS = 18;
const META = 24;
const P_META = 0x08;
const MAGIC_AT = META;
const VERSION_AT = META + 4;
const PAGE_SIZE_AT = META + 24;
/** md_root of the free-page and the main database (MDB_db: 48 bytes, md_root last; mm_dbs at 24). */
const FREE_ROOT_AT = META + 24 + 40;
const MAIN_ROOT_AT = META + 24 + 48 + 40;
/** P_INVALID: a database without a root page (empty). */
const NO_ROOT = 0xffffffffffffffffn;
const LAST_PAGE_AT = META + 120;
const TXN_AT = META + 128;
const META_BYTES = TXN_AT + 8;

interface Meta {
  pageSize: number;
  lastPage: number;
  txn: number;
  /** Root pages of the free-page and the main database (undefined: empty). */
  roots: Array<number | undefined>;
}

function readMeta(page: Buffer): Meta | string {
  if ((page.readUInt16LE(FLAGS) & P_META) === 0) return 'its first page is not an LMDB meta page';
  if (page.readUInt32LE(MAGIC_AT) !== MAGIC) return 'it does not start with the LMDB magic number';
  const version = page.readUInt32LE(VERSION_AT) & 0xffff;
  if (version !== DATA_VERSION) return `it is LMDB format ${version}, not ${DATA_VERSION}`;
  const pageSize = page.readUInt32LE(PAGE_SIZE_AT);
  if (pageSize < 512 || pageSize > 65_536 || (pageSize & (pageSize - 1)) !== 0)
    return `its page size (${pageSize}) is impossible`;
  const root = (at: number) => {
    const value = page.readBigUInt64LE(at);
    return value === NO_ROOT ? undefined : Number(value);
  };
  return {
    pageSize,
    lastPage: Number(page.readBigUInt64LE(LAST_PAGE_AT)),
    txn: Number(page.readBigUInt64LE(TXN_AT)),
    roots: [root(FREE_ROOT_AT), root(MAIN_ROOT_AT)],
  };
}

function read(fd: number, at: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  readSync(fd, buffer, 0, length, at);
  return buffer;
}

/** What is wrong with the data file at `path`, or undefined when it looks sound (or is new). */
export function dataFileProblem(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const size = statSync(path).size;
  if (size === 0) return undefined;
  if (size < META_BYTES) return `it is ${size} bytes long, shorter than an LMDB header`;
  const fd = openSync(path, 'r');
  try {
    const first = readMeta(read(fd, 0, META_BYTES));
    if (typeof first === 'string') return first;
    if (size < first.pageSize * 2) return `it is ${size} bytes long, shorter than its two meta pages`;
    const second = readMeta(read(fd, first.pageSize, META_BYTES));
    // LMDB reads the meta page with the higher transaction id; a damaged second page is ignored
    // only if the first one is newer.
    const current = typeof second === 'string' || second.txn < first.txn ? first : second;
    // The last page LMDB allocated need not be in the file: pages allocated and freed again in
    // the last transaction (an overflow chunk written and removed in it) are never written, so
    // a sound file can end before it (one page short after a purge of everything, seen). The
    // root pages of the last commit are written in it: one past the end is a truncated file.
    if (!Number.isSafeInteger((current.lastPage + 1) * current.pageSize))
      return `its last page (${current.lastPage}) is impossible`;
    for (const root of current.roots) {
      if (root === undefined) continue;
      const end = (root + 1) * current.pageSize;
      if (root > current.lastPage || !Number.isSafeInteger(end) || size < end)
        return `it is ${size} bytes long but a root page ends at byte ${end} (truncated)`;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Refuses to open a damaged cache directory, with one line saying what and what to do. */
export function checkStoreFile(dir: string): void {
  const path = join(dir, 'data.mdb');
  const problem = dataFileProblem(path);
  if (problem === undefined) return;
  throw new EdgeError(
    'EDGE_ERR_STORE_CORRUPT',
    `the cache file ${path} is damaged (${problem}); move the cache directory aside or remove it, the cache refills from the origins`,
  );
}
