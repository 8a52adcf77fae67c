/**
 * The persistent cache: one LMDB environment, named databases (see docs/architecture.md).
 * Reads are synchronous; writes are batched by lmdb-js into transactions. An entry
 * becomes visible only when its record is committed, in the same transaction as its
 * last chunk, so a fill that dies leaves nothing servable.
 */
import { randomBytes } from 'node:crypto';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import { EdgeError } from '../errors.ts';
import { within } from '../within.ts';
import { BodyWriter } from './body-writer.ts';
import { ChunkPool } from './chunk-pool.ts';
import { DECODED_MAX_RECORDS, DecodedRecords } from './decoded-records.ts';
import { type CommitTrigger, GatheredCommits } from './gathered-commits.ts';
import { chunkSum, intact, sealRecord } from './integrity.ts';
import { primaryOf, storageKey, VARIANT_SEPARATOR, variantKey, variantRange } from './key.ts';
import { MemoryTier } from './memory-tier.ts';
import { keyGenerationKey, META } from './meta-keys.ts';
import { buildAccessOrderInTxn, migrateSchema1InTxn } from './migrate.ts';
import { DEFAULT_ENCODINGS } from './policy/accept-encoding.ts';
import { secondaryKey } from './policy/vary.ts';
import { type EntryRecord, RECORD_VERSION, type StoredValue, type VaryMarker } from './record.ts';
import { checkStoreFile } from './store-file.ts';
import { writeFailure } from './write-failure.ts';

export interface StoreOptions {
  dir: string;
  maxSize: number;
  chunkSize: number;
  memorySize: number;
  memoryObjectSize: number;
  log: Logger;
  /** Clock for access times (ms). */
  now: () => number;
  /**
   * How long a replaced or removed body stays readable for responses still streaming it
   * (default 60 s). 0 on a stopped node's directory: nobody is reading, remove at once.
   */
  bodyGraceMs?: number;
  /** Most Vary variants kept per primary key (cache.maxVariants); default 100. */
  maxVariants?: number;
  /** Bound of the records kept decoded in this process, in bytes (default 64 MiB: decoded-records.ts). */
  decodedBytes?: number;
  /** How long an entry's commit waits for others to share its transaction (cache.commitDelay; 0: none). */
  commitDelayMs?: number;
}

/**
 * The layout of keys in the environment. 2: variant keys separated by U+001F (key.ts);
 * records and chunks checksummed. A schema 1 directory is migrated when opened.
 */
export const STORE_SCHEMA = 3;

/** What the store knows of a decoded record's body: its variant and chunk checksums. */
interface BodySums {
  id: string;
  sums: number[] | undefined;
  /** Chunks already checked in this process (1), created at the first check. */
  verified: Uint8Array | undefined;
}

export type Lookup =
  | { kind: 'miss' }
  | { kind: 'vary-miss'; fields: string[] }
  | { kind: 'found'; id: string; record: EntryRecord };

/** Bytes an entry is charged against cache.maxSize: its body plus record and index overhead. */
export function entryCost(record: EntryRecord): number {
  let headerBytes = 0;
  for (const field of record.headers) headerBytes += field.length;
  return record.size + headerBytes + record.url.length * 2 + 256;
}

const BODY_ID_PREFIX = randomBytes(9).toString('base64url');

/** Chunk checksums and damage reports kept per process before their tables start over. */
const DECODED_LIMIT = DECODED_MAX_RECORDS;
/** Keys remembered per read snapshot (#absent and #counters together), and the longest one remembered. */
const ABSENT_LIMIT = 1024;
const ABSENT_KEY_LIMIT = 2048;

const MISS: Lookup = { kind: 'miss' };
/** How long a replaced or removed body stays readable for responses still streaming it. */
const BODY_GRACE_MS = 60_000;
/** The store's databases, as compactTo copies them (keys and values as stored). */
const DATABASES = [
  { name: 'entries', dupSort: false },
  { name: 'chunks', dupSort: false },
  { name: 'tags', dupSort: true },
  { name: 'access', dupSort: false },
  { name: 'access-order', dupSort: false },
  { name: 'meta', dupSort: false },
  { name: 'purges', dupSort: false },
] as const;
/** Bytes of records copied per write transaction when compacting. */
const COMPACT_BATCH_BYTES = 64 * 1024 * 1024;
/**
 * After a failed write, misses pass through unstored this long before a fill tries again:
 * short, so that storing resumes within a second of space coming back.
 */
const WRITE_RETRY_MS = 1000;
const MAX_VARIANTS = 100;
/** Longest a shutdown waits for LMDB to close. */
const CLOSE_TIMEOUT_MS = 5000;
/**
 * How long an entry's commit waits for others to share its write transaction when the store is
 * opened without cache.commitDelay (tools, tests): at once.
 */
const COMMIT_DELAY_MS = 0;
/** Free chunk buffers kept for the next fills: 4 MiB at the default chunk size. */
const CHUNK_POOL_FREE = 16;

export class CacheStore {
  // The databases are private: other modules go through the named operations below.
  readonly #env: RootDatabase;
  readonly #entries: Database<StoredValue, string>;
  readonly #chunks: Database<Buffer, [string, number]>;
  readonly #tags: Database<string, string>;
  readonly #access: Database<[number, number], string>;
  /** [last access, variant key] → cost: the eviction order, least recently used first, kept by LMDB. */
  readonly #accessOrder: Database<number, [number, string]>;
  readonly #meta: Database<unknown, string>;
  readonly #purges: Database<unknown, number>;
  #environmentClosed = false;
  #graceBytes = 0;
  readonly memory: MemoryTier;
  /** Chunk buffers reused by fills (chunk-pool.ts). */
  readonly chunkPool: ChunkPool;
  readonly options: StoreOptions;
  readonly #accessed = new Map<string, number>();
  #bodies = 0;
  readonly #removals = new Set<Promise<void>>();
  /** Entry commits sharing write transactions (gathered-commits.ts). */
  readonly #gathered: GatheredCommits;
  /** Decoded records by key, with the bytes they were decoded from (see #read). */
  readonly #decoded: DecodedRecords;
  /**
   * Counts the LMDB read snapshots this process reads in: it moves on whenever lmdb-js renews its
   * read transaction ('begin-transaction', from any database of the environment). A decoded
   * record compared with LMDB in the current one (DecodedRecord.seen) is returned without reading
   * it again: a read now would return the same bytes (see #read).
   */
  #snapshot = 1;
  /**
   * What was read in snapshot #readIn, valid until it moves on (both bounded): keys read and found
   * absent (a pass of a key known uncacheable, a Vary miss, asked again and again within one
   * event-loop turn), and the `meta` counters of generations (#counter).
   */
  readonly #absent = new Set<string>();
  readonly #counters = new Map<string, unknown>();
  #readIn = 0;
  /** Chunk checksums of the bodies of decoded records, and the variant each belongs to. */
  readonly #sums = new Map<string, BodySums>();
  /** Damaged entries already reported (each is logged once). */
  readonly #reported = new Set<string>();
  /** Damaged entries whose removal has not committed yet: misses here meanwhile. */
  readonly #removing = new Set<string>();
  #writableAfter = 0;
  #failing = false;
  readonly #writeListeners = new Set<(failing: boolean, reason: string | undefined) => void>();
  #writeError: string | undefined;
  /** Damaged records or chunks found (and removed) since the store was opened. */
  corrupt = 0;
  #closed = false;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: StoreOptions) {
    this.options = options;
    this.#decoded = new DecodedRecords(options.decodedBytes);
    this.#gathered = new GatheredCommits(
      (work) => this.write(work),
      options.commitDelayMs ?? COMMIT_DELAY_MS,
    );
    try {
      // LMDB trusts its file: a damaged one would end the process with SIGSEGV or SIGBUS.
      checkStoreFile(options.dir);
      // eventTurnBatching off: atomicity comes from explicit transactions, and with it on lmdb-js
      // leaves a promise of its own unhandled when a batch commit fails (disk full).
      this.#env = open({ path: options.dir, maxDbs: 16, pageSize: 4096, eventTurnBatching: false });
      this.#entries = this.#env.openDB<StoredValue, string>({
        name: 'entries',
        sharedStructuresKey: Symbol.for('structures'),
      });
      this.#chunks = this.#env.openDB<Buffer, [string, number]>({ name: 'chunks', encoding: 'binary' });
      this.#tags = this.#env.openDB<string, string>({
        name: 'tags',
        dupSort: true,
        encoding: 'ordered-binary',
      });
      this.#access = this.#env.openDB<[number, number], string>({ name: 'access' });
      this.#accessOrder = this.#env.openDB<number, [number, string]>({ name: 'access-order' });
      this.#meta = this.#env.openDB<unknown, string>({ name: 'meta' });
      this.#purges = this.#env.openDB<unknown, number>({ name: 'purges' });
      // Every database of the environment shares its read snapshot, and any of them may renew it.
      const renewed = (): void => {
        this.#snapshot++;
      };
      // addListener: lmdb-js overrides `on`, and its fallback for other events throws.
      for (const db of [
        this.#env,
        this.#entries,
        this.#chunks,
        this.#tags,
        this.#access,
        this.#accessOrder,
        this.#meta,
        this.#purges,
      ])
        (db as unknown as NodeJS.EventEmitter).addListener('begin-transaction', renewed);
    } catch (error) {
      if (error instanceof EdgeError) throw error;
      const message = (error as Error).message;
      // Files of another user (LMDB's words, or the file check's): the cache is sound, and
      // removing it is the wrong advice.
      if (/permission denied|EACCES|EPERM|operation not permitted/i.test(message))
        throw new EdgeError(
          'EDGE_ERR_STARTUP',
          `the cache in ${options.dir} cannot be opened (${message}): data.mdb and lock.mdb must be readable and writable by the node's user${typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : ''}`,
          { cause: error },
        );
      throw new EdgeError(
        'EDGE_ERR_STORE_CORRUPT',
        `the cache in ${options.dir} cannot be opened (${message}); move the cache directory aside or remove it, the cache refills from the origins`,
        { cause: error },
      );
    }
    this.memory = new MemoryTier(options.memorySize, options.memoryObjectSize);
    this.chunkPool = new ChunkPool(options.chunkSize, CHUNK_POOL_FREE);
    this.#upgradeSchema();
    guardCommitFailures(this);
  }

  /**
   * Stamps a new directory, migrates an older one, refuses one from a newer version: the store
   * schema (key layout) and the entry record version (record.ts) are both checked here.
   */
  #upgradeSchema(): void {
    const schema = this.#meta.get(META.schema) as number | undefined;
    const records = this.#meta.get(META.recordVersion) as number | undefined;
    if (schema !== undefined && ![1, 2, STORE_SCHEMA].includes(schema)) {
      this.#refuse(`store schema ${String(schema)}`, `schema ${STORE_SCHEMA}`);
    }
    if (records !== undefined && records !== RECORD_VERSION) {
      // Version 1 is the only one there has been: anything else was written by a newer version.
      this.#refuse(`entry records of version ${String(records)}`, `record version ${RECORD_VERSION}`);
    }
    if (schema === STORE_SCHEMA && records === RECORD_VERSION) return;
    const moved = this.#env.transactionSync(() => {
      const databases = {
        entries: this.#entries,
        access: this.#access,
        accessOrder: this.#accessOrder,
        tags: this.#tags,
      };
      const count = schema === 1 ? migrateSchema1InTxn(databases) : 0;
      // Schema 3 adds the access-order index; a directory from before has none yet.
      if (schema !== undefined && schema < 3) buildAccessOrderInTxn(databases);
      this.#meta.put(META.schema, STORE_SCHEMA);
      // Directories from before the stamp hold version 1 records, the only version there has been.
      this.#meta.put(META.recordVersion, RECORD_VERSION);
      return count;
    });
    if (schema !== undefined && schema < STORE_SCHEMA)
      this.options.log.info({ keys: moved, from: schema, schema: STORE_SCHEMA }, 'cache store migrated');
  }

  #refuse(found: string, reads: string): never {
    void this.#env.close();
    throw new EdgeError(
      'EDGE_ERR_STORE_SCHEMA',
      `the cache in ${this.options.dir} has ${found}, written by a newer version; this version reads ${reads}: move the cache directory aside or remove it`,
    );
  }

  /** Synchronous: the variant of `storage` that matches the request's Vary fields. */
  lookup(storage: string, headers: Record<string, string | string[] | undefined>): Lookup {
    try {
      return this.#lookup(storage, headers);
    } catch (error) {
      // LMDB reporting a damaged page, or anything else: a miss, never an end of the process.
      this.#damaged(storage, undefined, error);
      return MISS;
    }
  }

  #lookup(storage: string, headers: Record<string, string | string[] | undefined>): Lookup {
    const value = this.#read(storage);
    if (value === undefined) return MISS;
    if (value.kind === 'entry') return { kind: 'found', id: storage, record: value };
    const id = variantKey(storage, secondaryKey(value.fields, headers));
    const variant = this.#read(id);
    if (variant === undefined || variant.kind !== 'entry') return { kind: 'vary-miss', fields: value.fields };
    return { kind: 'found', id, record: variant };
  }

  /** The entry's decoded value when it reads back intact; a damaged one is removed (a miss). */
  #decode(id: string): StoredValue | undefined {
    let value: unknown;
    try {
      value = this.#entries.get(id);
    } catch (error) {
      this.#damaged(id, undefined, error);
      return undefined;
    }
    if (value === undefined) return undefined;
    if (!intact(value)) {
      this.#damaged(id, undefined, 'record checksum or shape');
      return undefined;
    }
    if (value.v !== RECORD_VERSION) {
      // A record this version cannot read: a miss (and removed), never an exception.
      this.#damaged(id, undefined, `record version ${String(value.v)}, this version reads ${RECORD_VERSION}`);
      return undefined;
    }
    if (value.kind === 'entry' && !this.#bodyIntact(id, value)) return undefined;
    return value;
  }

  /**
   * Notes the chunk checksums of a newly decoded record (checked as chunks are read) and, when
   * the body is small enough for the memory tier, reads and checks it now: a damaged body then
   * makes this lookup a miss instead of a response cut short after its head.
   */
  #bodyIntact(id: string, record: EntryRecord): boolean {
    if (this.#sums.size >= DECODED_LIMIT) this.#sums.clear();
    this.#sums.set(record.bodyId, { id, sums: record.sums, verified: undefined });
    if (record.size === 0 || !this.memory.accepts(record.size) || this.memory.has(record.bodyId)) return true;
    return this.#loadBody(record) !== undefined;
  }

  /**
   * One record, decoded at most once per change: the raw bytes are read from LMDB (so writes by
   * any process are seen at once) and compared with the bytes the cached decoded value came
   * from, once per read snapshot (#snapshot): a hot key's hits in one event-loop turn read it
   * once. Returned records are shared: never mutate them.
   */
  #read(id: string): StoredValue | undefined {
    if (this.#removing.size > 0 && this.#removing.has(id)) return undefined;
    const snapshot = this.#trustedSnapshot();
    const cached = this.#decoded.get(id);
    if (cached !== undefined && cached.seen === snapshot) return cached.value;
    if (snapshot !== undefined && this.#readIn === snapshot && this.#absent.has(id)) return undefined;
    const view = this.#rawBytes(id);
    if (view === undefined) {
      this.#decoded.delete(id);
      if (snapshot !== undefined && this.#readSince(snapshot) && id.length <= ABSENT_KEY_LIMIT)
        this.#absent.add(id);
      return undefined;
    }
    if (cached?.bytes.equals(view)) {
      if (snapshot !== undefined) cached.seen = snapshot;
      return cached.value;
    }
    // A copy of its own: kept as long as the decoded record, it must not pin one of Node's shared
    // 8 KiB pool slabs (Buffer.from of a small view is a slice of one): 20,000 hot records pinned
    // about 20 MB of slabs that way.
    const bytes = Buffer.allocUnsafeSlow(view.length);
    view.copy(bytes);
    const value = this.#decode(id);
    if (value === undefined) return undefined;
    // Cache it only if nothing changed between the two reads.
    const again = this.#rawBytes(id);
    if (again?.equals(bytes)) {
      this.#decoded.set(id, { bytes, value, seen: snapshot ?? 0 });
    }
    return value;
  }

  /**
   * The read snapshot in which what was read may be trusted, or undefined inside a write
   * transaction (its reads see its own writes). lmdb-js resets its read transaction without
   * telling (its timer on the next turn, after a commit, resetReadTxn, close): renewing it here,
   * if it was reset, emits 'begin-transaction' and moves #snapshot on before a mark is trusted.
   * Another process's commits are seen from that renewal on, as by a read.
   */
  #trustedSnapshot(): number | undefined {
    if ((this.#env as unknown as { env: { writeTxn?: unknown } }).env.writeTxn != null) return undefined;
    (this.#entries as unknown as { ensureReadTxn(): void }).ensureReadTxn();
    return this.#snapshot;
  }

  /**
   * Starts #absent and #counters over when `snapshot` is a new one; whether they have room for
   * one more.
   */
  #readSince(snapshot: number): boolean {
    if (this.#readIn !== snapshot) {
      this.#absent.clear();
      this.#counters.clear();
      this.#readIn = snapshot;
    }
    return this.#absent.size + this.#counters.size < ABSENT_LIMIT;
  }

  /** The record's encoded bytes, valid until the next LMDB read (no copy). */
  #rawBytes(id: string): Buffer | undefined {
    const entries = this.#entries as Database<StoredValue, string> & { lastSize: number };
    const raw = entries.getBinaryFast(id) as (Buffer & { isGlobal?: boolean }) | undefined;
    if (raw === undefined) return undefined;
    return raw.isGlobal ? raw.subarray(0, entries.lastSize) : raw;
  }

  /** Note a hit for eviction order; flushed to LMDB in batches, never per request. */
  touch(id: string): void {
    this.#accessed.set(id, this.options.now());
  }

  /** The whole body when it is small enough for the memory tier (read once from LMDB, then kept). */
  smallBody(record: EntryRecord): Buffer | undefined {
    const cached = this.memory.get(record.bodyId);
    if (cached !== undefined) return cached;
    if (!this.memory.accepts(record.size)) return undefined;
    return this.#loadBody(record);
  }

  /** Reads a whole body from LMDB, checks it, and keeps it in the memory tier. */
  #loadBody(record: EntryRecord): Buffer | undefined {
    const parts: Buffer[] = [];
    for (let i = 0; i < record.chunks; i++) {
      const chunk = this.#readChunk(record.bodyId, i);
      if (chunk === undefined) return undefined;
      const expected = record.sums?.[i];
      if (expected !== undefined && chunkSum(chunk) !== expected) {
        this.#damaged(this.#idOf(record), record.bodyId, 'chunk checksum');
        return undefined;
      }
      parts.push(chunk);
    }
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, record.size);
    if (body.length !== record.size) {
      this.#damaged(this.#idOf(record), record.bodyId, 'body length');
      return undefined;
    }
    this.memory.set(record.bodyId, body);
    return body;
  }

  /** The LMDB key of a record's variant. */
  #idOf(record: EntryRecord): string {
    return this.#sums.get(record.bodyId)?.id ?? variantKey(storageKey(record.url), record.secondaryKey);
  }

  #readChunk(bodyId: string, index: number, fast = false): Buffer | undefined {
    try {
      const key: [string, number] = [bodyId, index];
      return fast ? this.#chunks.getBinaryFast(key) : this.#chunks.getBinary(key);
    } catch (error) {
      this.options.log.error({ err: error, bodyId, index }, 'cache chunk read failed');
      return undefined;
    }
  }

  /**
   * One chunk of a body, checked against its record's checksum when that record was decoded
   * here; a damaged chunk is undefined (the reader cuts its response short) and its entry removed.
   */
  chunk(bodyId: string, index: number): Buffer | undefined {
    const chunk = this.#readChunk(bodyId, index);
    return chunk !== undefined && this.#intactChunk(bodyId, index, chunk) ? chunk : undefined;
  }

  /**
   * `chunk`, read into a buffer of the chunk pool instead of a new one (no allocation per read:
   * see chunk-pool.ts). The caller gives the buffer back once nothing refers to it.
   */
  pooledChunk(bodyId: string, index: number): Buffer | undefined {
    // Valid until the next read: copied at once.
    const bytes = this.#readChunk(bodyId, index, true);
    if (bytes === undefined) return undefined;
    if (bytes.length > this.chunkPool.size) return this.chunk(bodyId, index);
    const chunk = this.chunkPool.take().subarray(0, bytes.length);
    bytes.copy(chunk);
    if (this.#intactChunk(bodyId, index, chunk)) return chunk;
    this.chunkPool.give(chunk);
    return undefined;
  }

  #intactChunk(bodyId: string, index: number, chunk: Buffer): boolean {
    const known = this.#sums.get(bodyId);
    const expected = known?.sums?.[index];
    if (expected === undefined || known!.verified?.[index] === 1) return true;
    // A CRC costs about what reading the chunk does: each chunk is checked once per process.
    if (chunkSum(chunk) !== expected) {
      this.#damaged(known!.id, bodyId, 'chunk checksum');
      return false;
    }
    known!.verified ??= new Uint8Array(known!.sums!.length);
    known!.verified[index] = 1;
    return true;
  }

  /**
   * A record or chunk that does not read back as written: logged once, forgotten in this
   * process, and removed from LMDB, so the next request for it is a miss that refetches.
   */
  #damaged(id: string, bodyId: string | undefined, reason: unknown): void {
    this.corrupt++;
    this.#decoded.delete(id);
    if (bodyId !== undefined) {
      this.memory.delete(bodyId);
      this.#sums.delete(bodyId);
    }
    if (!this.#reported.has(id)) {
      if (this.#reported.size >= DECODED_LIMIT) this.#reported.clear();
      this.#reported.add(id);
      const failure = new EdgeError(
        'EDGE_ERR_STORE_CHECKSUM',
        'damaged cache entry removed; it is fetched again',
        {
          cause: reason,
        },
      );
      this.options.log.error(
        { code: failure.code, key: id, reason: reason instanceof Error ? reason.message : String(reason) },
        failure.message,
      );
    }
    if (this.#closed) return;
    this.#removing.add(id);
    this.write(() => this.dropInTxn(id))
      .catch(() => {})
      .finally(() => this.#removing.delete(id));
  }

  /** Removes an entry that may not decode: through the index when it can, else by key alone. */
  dropInTxn(id: string): void {
    try {
      if (this.removeEvictedInTxn(id)) return;
    } catch {
      // Undecodable: removed by key below.
    }
    this.#entries.remove(id);
    this.#forgetAccessInTxn(id);
    this.#accessed.delete(id);
    if (id.includes(VARIANT_SEPARATOR)) return;
    for (const key of [...this.#entries.getKeys(variantRange(id))]) {
      try {
        if (this.removeVariantInTxn(key)) continue;
      } catch {
        // Undecodable too.
      }
      this.#entries.remove(key);
      this.#forgetAccessInTxn(key);
    }
  }

  /** Inside a write transaction: a variant's access time and cost, in both access databases. */
  #setAccessInTxn(id: string, time: number, cost: number): void {
    const current = this.#access.get(id);
    if (current !== undefined) this.#accessOrder.remove([current[0], id]);
    this.#access.put(id, [time, cost]);
    this.#accessOrder.put([time, id], cost);
  }

  /** Inside a write transaction: a variant is gone from both access databases. */
  #forgetAccessInTxn(id: string): void {
    const current = this.#access.get(id);
    if (current === undefined) return;
    this.#accessOrder.remove([current[0], id]);
    this.#access.remove(id);
  }

  /** Bytes the records decoded in this process are counted as holding (decoded-records.ts). */
  get decodedBytes(): number {
    return this.#decoded.bytes;
  }

  /** False while writes are failing (disk or map full, I/O error, damaged file): misses then pass through unstored. */
  get writable(): boolean {
    return this.options.now() >= this.#writableAfter;
  }

  /** True from a failed write until a write succeeds again: the node is degraded (health). */
  get refusingWrites(): boolean {
    return this.#failing;
  }

  /** While refusing writes: why the last write failed, in an operator's words (health). */
  get writeError(): string | undefined {
    return this.#failing ? this.#writeError : undefined;
  }

  /**
   * Tells `listener` when writes start or stop failing, and when the reason is known (a worker
   * tells its primary, whose health answers for the node). Returns the unsubscribe.
   */
  onWriteState(listener: (failing: boolean, reason: string | undefined) => void): () => void {
    this.#writeListeners.add(listener);
    return () => this.#writeListeners.delete(listener);
  }

  #tellWriteState(): void {
    for (const listener of this.#writeListeners) listener(this.#failing, this.writeError);
  }

  writeFailed(error: unknown): void {
    // lmdb-js attaches the commit's own promise to the error: it rejects with the reason (ENOSPC,
    // MDB_CORRUPTED...) once the commit's status is read; handled here, kept for health.
    const commitError = (error as { commitError?: Promise<unknown> } | undefined)?.commitError;
    const before = this.#writeError;
    if (commitError && typeof commitError.catch === 'function') {
      this.#writeError ??= 'commit failed';
      commitError.catch((cause: unknown) => {
        if (!this.#failing) return;
        this.#writeError = writeFailure(cause, this.options.dir);
        this.#tellWriteState();
      });
    } else this.#writeError = writeFailure(error, this.options.dir);
    if (!this.#failing || before !== this.#writeError) queueMicrotask(() => this.#tellWriteState());
    if (!this.#failing) {
      const failure = new EdgeError(
        'EDGE_ERR_STORE_WRITE',
        'cache write failed; misses pass through unstored until a write succeeds again',
        { cause: error },
      );
      this.options.log.error({ err: error, code: failure.code }, failure.message);
    }
    this.#failing = true;
    this.#writableAfter = this.options.now() + WRITE_RETRY_MS;
  }

  /** A write committed: storing goes on (after a failure, from now on). */
  writeSucceeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#writeError = undefined;
    this.#writableAfter = 0;
    this.options.log.info('cache writes succeed again; storing resumed');
    this.#tellWriteState();
  }

  /**
   * Unique across processes and restarts: creation time (the orphan sweep reads it), a random
   * prefix drawn once per process, and a counter (no random draw per fill).
   */
  /** This process's part of every body id it makes (newBodyId): tells its bodies from others'. */
  get bodyIdPrefix(): string {
    return BODY_ID_PREFIX;
  }

  /** How long a replaced or removed body stays readable (cache.bodyGraceMs, default 60 s). */
  get bodyGraceMs(): number {
    return this.options.bodyGraceMs ?? BODY_GRACE_MS;
  }

  newBodyId(): string {
    this.#bodies++;
    return `${Date.now().toString(36)}.${BODY_ID_PREFIX}${this.#bodies.toString(36)}`;
  }

  createWriter(storage: string): BodyWriter {
    return new BodyWriter(this, storage, this.newBodyId());
  }

  /**
   * Commits a complete entry in one transaction with its last chunk (done by the writer).
   * Replaces the previous variant; the old body is removed after a grace period.
   * Runs inside a write transaction.
   */
  commitEntryInTxn(storage: string, id: string, record: EntryRecord): void {
    const current = this.#entries.get(storage);
    if (record.vary.length > 0) {
      const marker: VaryMarker = { kind: 'vary', v: RECORD_VERSION, fields: record.vary };
      if (current?.kind === 'entry') this.#removeVariantInTxn(storage, current);
      if (current?.kind !== 'vary' || current.fields.join() !== record.vary.join()) {
        this.#removeVariantsInTxn(storage);
        this.#entries.put(storage, marker);
      }
    } else if (current?.kind === 'vary') {
      this.#removeVariantsInTxn(storage);
    }
    const previous = id === storage ? (current?.kind === 'entry' ? current : undefined) : this.#entryAt(id);
    if (previous !== undefined) this.#removeVariantInTxn(id, previous);
    if (previous?.compressible === true) this.#removeMadeCodingsInTxn(storage, previous);
    this.#entries.put(id, sealRecord(record));
    for (const tag of record.tags) this.#tags.put(tag, id);
    this.#setAccessInTxn(id, this.options.now(), entryCost(record));
    this.#addBytes(entryCost(record));
    if (id !== storage) this.#capVariantsInTxn(storage, id);
  }

  /**
   * A new identity entry replaces `previous`, the one the node's codings of the object were
   * made from (derive.ts marks them, madeFrom): they go with it, even after a 304 refreshed
   * either, and the next request for a coding makes it from the new bytes. Left in place, a
   * stale coding was revalidated for ever (its refetch stores identity, never the coding), and
   * one made from old bytes outlived a forced reload. Codings the origin sent itself stay.
   */
  #removeMadeCodingsInTxn(storage: string, previous: EntryRecord): void {
    const line = 'accept-encoding=identity\n';
    const secondary = previous.secondaryKey;
    const at = secondary.indexOf(line);
    if (at === -1) return;
    for (const coding of DEFAULT_ENCODINGS) {
      const id = variantKey(
        storage,
        `${secondary.slice(0, at)}accept-encoding=${coding}\n${secondary.slice(at + line.length)}`,
      );
      const made = this.#entryAt(id);
      if (made !== undefined && madeFrom(made, previous)) this.#removeVariantInTxn(id, made);
    }
  }

  /**
   * Keeps at most `maxVariants` variants of a primary key: past it, the least recently used
   * ones (other than the one just stored) go. A request header with endless values under
   * Vary cannot fill the cache with one URL.
   */
  #capVariantsInTxn(storage: string, stored: string): void {
    const max = this.options.maxVariants ?? MAX_VARIANTS;
    const ids: string[] = [];
    for (const key of this.#entries.getKeys(variantRange(storage))) ids.push(key);
    if (ids.length <= max) return;
    const others = ids
      .filter((key) => key !== stored)
      .map((key) => ({ key, time: this.#accessed.get(key) ?? this.#access.get(key)?.[0] ?? 0 }));
    others.sort((a, b) => a.time - b.time);
    for (let i = 0; i < ids.length - max && i < others.length; i++) this.removeVariantInTxn(others[i]!.key);
  }

  #entryAt(id: string): EntryRecord | undefined {
    const value = this.#entries.get(id);
    return value?.kind === 'entry' ? value : undefined;
  }

  #addBytes(delta: number): void {
    const bytes = (this.#meta.get(META.bytes) as number | undefined) ?? 0;
    this.#meta.put(META.bytes, Math.max(0, bytes + delta));
  }

  /** Inside a write transaction: forget one variant, its tags and (later) its body. */
  #removeVariantInTxn(id: string, record: EntryRecord): void {
    this.#entries.remove(id);
    this.#forgetAccessInTxn(id);
    for (const tag of record.tags) this.#tags.remove(tag, id);
    this.#addBytes(-entryCost(record));
    this.#accessed.delete(id);
    this.removeBodyLater(record.bodyId, record.chunks, record.size);
  }

  #removeVariantsInTxn(storage: string): number {
    let removed = 0;
    for (const { key, value } of this.#entries.getRange(variantRange(storage))) {
      if (value.kind === 'entry') {
        this.#removeVariantInTxn(key, value);
        removed++;
      }
    }
    return removed;
  }

  /** Removes every variant of a primary key (a hard purge or eviction). Returns how many. */
  removeKeyInTxn(storage: string): number {
    const current = this.#entries.get(storage);
    if (current === undefined) return 0;
    if (current.kind === 'entry') {
      this.#removeVariantInTxn(storage, current);
      return 1;
    }
    this.#entries.remove(storage);
    return this.#removeVariantsInTxn(storage);
  }

  /** Eviction of one variant; the primary key's Vary marker goes with its last variant. */
  removeEvictedInTxn(id: string): boolean {
    const removed = this.removeVariantInTxn(id);
    const separator = id.indexOf(VARIANT_SEPARATOR);
    if (removed && separator > 0) {
      const storage = id.slice(0, separator);
      let left = false;
      for (const _ of this.#entries.getKeys({ ...variantRange(storage), limit: 1 })) left = true;
      if (!left) this.#entries.remove(storage);
    }
    return removed;
  }

  /**
   * Eviction of one variant with the other representations of its object (docs/compression.md):
   * a compressible identity entry and the codings made from it share the primary key and every
   * Vary field but Accept-Encoding, and leave in one transaction, so no coding outlives its
   * source and no source stays for a coding to be made again on demand. Returns how many
   * variants went (0 when the variant was already gone).
   */
  evictRepresentationsInTxn(id: string): number {
    const record = this.#entryAt(id);
    if (record === undefined) return 0;
    const separator = id.indexOf(VARIANT_SEPARATOR);
    if (separator < 0 || !representation(record)) return this.removeEvictedInTxn(id) ? 1 : 0;
    const storage = id.slice(0, separator);
    const family = withoutCoding(record.secondaryKey);
    const members = [id];
    for (const { key, value } of this.#entries.getRange(variantRange(storage))) {
      if (key === id || value.kind !== 'entry') continue;
      if (!representation(value)) continue;
      if (withoutCoding(value.secondaryKey) === family) members.push(key);
    }
    let removed = 0;
    for (const member of members) if (this.removeEvictedInTxn(member)) removed++;
    return removed;
  }

  removeVariantInTxn(id: string): boolean {
    const record = this.#entryAt(id);
    if (record === undefined) return false;
    this.#removeVariantInTxn(id, record);
    return true;
  }

  /** Marks every variant of a primary key stale (soft purge, RFC 9111 §4.4 invalidation). */
  invalidateKeyInTxn(storage: string): number {
    const current = this.#entries.get(storage);
    if (current === undefined) return 0;
    if (current.kind === 'entry') return this.invalidateVariantInTxn(storage) ? 1 : 0;
    let count = 0;
    for (const { key } of this.#entries.getRange(variantRange(storage))) {
      if (this.invalidateVariantInTxn(key)) count++;
    }
    return count;
  }

  /**
   * Marks one variant stale from now, with the age it has (reuse.ts remainingFreshness): a
   * stale-while-revalidate or stale-if-error window runs from the mark.
   */
  invalidateVariantInTxn(id: string): boolean {
    const record = this.#entryAt(id);
    if (record === undefined || record.invalidated) return false;
    const invalidatedAge = Math.max(0, record.initialAge + (this.options.now() - record.responseTime) / 1000);
    this.#entries.put(id, sealRecord({ ...record, invalidated: true, invalidatedAge }));
    return true;
  }

  /**
   * Runs `work` in a write transaction. A failed commit (map or disk full, I/O error) pauses
   * storing and rejects; it never surfaces as an unhandled rejection.
   */
  write<T>(work: () => T): Promise<T> {
    return this.#entries.transaction(work).then(
      (result) => {
        this.writeSucceeded();
        return result;
      },
      (error: unknown) => {
        this.writeFailed(error);
        throw error;
      },
    );
  }

  /**
   * Runs an entry's commit in a write transaction shared with the commits made within
   * cache.commitDelay of it (gathered-commits.ts); `atOnce`: a request waits for it, it goes now.
   */
  commitGathered<T>(work: () => T, atOnce = false): Promise<T> {
    return this.#gathered.commit(work, atOnce);
  }

  /** A request waits for an entry's commit: commits go at once until the returned release. */
  holdCommits(): () => void {
    return this.#gathered.hold();
  }

  /** Told of every transaction of gathered commits, with what started it (the node's metrics). */
  observeCommits(observer: (trigger: CommitTrigger) => void): void {
    this.#gathered.observe(observer);
  }

  /** Commits waiting for their shared transaction. */
  get commitsWaiting(): number {
    return this.#gathered.waiting;
  }

  /** Hard removal of a primary key, in its own transaction. */
  removeKey(storage: string): Promise<number> {
    return this.write(() => this.removeKeyInTxn(storage));
  }

  /**
   * Marks a key stale (RFC 9111 §4.4) and stops fills of that key (only) that began before:
   * the key's own generation moves, not the node-wide purge sequence.
   */
  invalidateKey(storage: string): Promise<number> {
    return this.write(() => this.#invalidateWithGenerationInTxn(storage));
  }

  /** Inside a write transaction: voids the key's fills under way (its generation), marks it stale. */
  #invalidateWithGenerationInTxn(storage: string): number {
    const name = keyGenerationKey(storage);
    this.#meta.put(name, ((this.#meta.get(name) as number | undefined) ?? 0) + 1);
    return this.invalidateKeyInTxn(storage);
  }

  /**
   * Marks stale every keyed copy of a URL (RFC 9111 §4.4 invalidates the target URI, every copy
   * of it): the keys a site rule's cacheKey extends with request values after a space
   * (key-rules.ts), which all sort right after `url + ' '`. At most `limit` keys; a copy whose
   * key was shortened to a digest (longer than MAX_KEY_LENGTH) before the space is not found.
   */
  invalidateKeyedCopies(url: string, limit = 1024): Promise<number> {
    const prefix = `${url} `;
    return this.write(() => {
      const keys: string[] = [];
      for (const key of this.keys({ start: prefix, limit })) {
        if (!key.startsWith(prefix)) break;
        if (!key.includes(VARIANT_SEPARATOR)) keys.push(key);
      }
      let count = 0;
      for (const storage of keys) count += this.#invalidateWithGenerationInTxn(storage);
      return count;
    });
  }

  /**
   * What a fill or refresh of `storage` compares at commit: it changes with every purge
   * (node-wide sequence) and with every invalidation of this key. Another value: void.
   * A keyed copy (`url values`, key-rules.ts) also changes with every invalidation of its URL:
   * an unsafe method invalidates every copy, those whose fetch is still running too.
   */
  purgeGeneration(storage: string): string {
    const own = `${(this.#counter(META.purgeSeq) as number | undefined) ?? 0}:${this.#keyGeneration(storage)}`;
    const space = storage.indexOf(' ');
    return space === -1 ? own : `${own}:${this.#keyGeneration(storageKey(storage.slice(0, space)))}`;
  }

  #keyGeneration(storage: string): number {
    return (this.#counter(keyGenerationKey(storage)) as number | undefined) ?? 0;
  }

  /**
   * A `meta` counter read for a generation, read from LMDB once per read snapshot (as records
   * are, #read): every miss and pass reads the purge sequence and its key's invalidation count.
   * Inside a write transaction (a commit comparing generations), always from LMDB.
   */
  #counter(key: string): unknown {
    const snapshot = this.#trustedSnapshot();
    if (snapshot === undefined) return this.#meta.get(key);
    if (this.#readIn === snapshot && this.#counters.has(key)) return this.#counters.get(key);
    const value = this.#meta.get(key);
    if (this.#readSince(snapshot) && key.length <= ABSENT_KEY_LIMIT) this.#counters.set(key, value);
    return value;
  }

  bumpPurgeGenerationInTxn(): void {
    this.#meta.put(META.purgeSeq, ((this.#meta.get(META.purgeSeq) as number | undefined) ?? 0) + 1);
  }

  /**
   * Replaces a record's headers and freshness after a 304, if its body is still the same and
   * no purge or invalidation happened since the revalidation began (`generation`).
   */
  refresh(id: string, record: EntryRecord, generation: unknown): Promise<boolean> {
    return this.write(() => {
      if (this.purgeGeneration(primaryOf(id)) !== generation) return false;
      const current = this.#entryAt(id);
      if (current === undefined || current.bodyId !== record.bodyId) return false;
      this.#entries.put(id, sealRecord(record));
      this.#retagInTxn(id, current.tags, record.tags);
      return true;
    });
  }

  /** Inside a write transaction: the tag index of variant `id` moves from `before` to `after`. */
  #retagInTxn(id: string, before: readonly string[], after: readonly string[]): void {
    for (const tag of before) if (!after.includes(tag)) this.#tags.remove(tag, id);
    for (const tag of after) if (!before.includes(tag)) this.#tags.put(tag, id);
  }

  /**
   * Every variant of the primary key of `id` goes, the node's codings of it included, if `id`
   * still holds body `bodyId`. After a 304 that changed the entry's Vary: as a full response with
   * another Vary would replace them (commitEntryInTxn); left in place, they stayed selected by
   * fields the origin no longer varies on alone. Returns how many variants went (0 when the
   * entry was replaced or removed meanwhile: what replaced it came with its own Vary).
   */
  removeKeyIfHolds(id: string, bodyId: string): Promise<number> {
    return this.write(() => (this.holdsBodyInTxn(id, bodyId) ? this.removeKeyInTxn(primaryOf(id)) : 0));
  }
  /**
   * The variant `id` goes if it still holds body `bodyId`: after a background revalidation
   * answered with a response that cannot be stored, it is no longer the most recent (RFC 9111
   * §4). Its other variants answered other requests and stay. False when it was replaced or
   * removed meanwhile (what replaced it is newer).
   */
  removeVariantIfHolds(id: string, bodyId: string): Promise<boolean> {
    return this.write(() => this.holdsBodyInTxn(id, bodyId) && this.removeVariantInTxn(id));
  }

  /**
   * Bytes of bodies removed from the index but kept on disk for their grace period (what their
   * chunks take in LMDB: bodyDiskBytes), by this process: eviction counts them against
   * cache.maxSize, or the file grew by everything fetched within a grace period past it (19×
   * maxSize, seen).
   */
  get graceBytes(): number {
    return this.#graceBytes;
  }

  /** Removes a body's `chunks` chunks (`size` bytes in all) once its grace period is over. */
  removeBodyLater(bodyId: string, chunks: number, size: number): void {
    if (this.#closed) return;
    if (this.options.bodyGraceMs === 0) {
      // In a write transaction this runs inside it; otherwise close() waits for it.
      const removal = this.write(() => {
        for (let i = 0; i < chunks; i++) this.#chunks.remove([bodyId, i]);
      }).catch(() => {});
      this.#removals.add(removal);
      void removal.finally(() => this.#removals.delete(removal));
      return;
    }
    const bytes = bodyDiskBytes(chunks, size);
    this.#graceBytes += bytes;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#graceBytes -= bytes;
      this.memory.delete(bodyId);
      if (this.#closed) return;
      this.write(() => {
        for (let i = 0; i < chunks; i++) this.#chunks.remove([bodyId, i]);
      }).catch(() => {});
    }, this.options.bodyGraceMs ?? BODY_GRACE_MS);
    timer.unref();
    this.#timers.add(timer);
  }

  // ---- Named operations for purge, eviction, admin and the purge log. ----

  /** The value stored at `id` as LMDB holds it (no checks, no caching): for writers and inspection. */
  current(id: string): StoredValue | undefined {
    return this.#entries.get(id);
  }

  /** Inside a write transaction: whether a complete (not partial) entry is stored at `id`. */
  holdsFullEntryInTxn(id: string): boolean {
    const current = this.#entries.get(id);
    return current?.kind === 'entry' && current.range === undefined;
  }

  /** Inside a write transaction: whether the entry at `id` still has body `bodyId`. */
  holdsBodyInTxn(id: string, bodyId: string): boolean {
    const current = this.#entries.get(id);
    return current?.kind === 'entry' && current.bodyId === bodyId;
  }

  /**
   * Record keys (primary and variant) in key order, from `start` or after `after`, at most
   * `limit`: the scan of a prefix purge and of the orphan sweep.
   */
  *keys(range: { start?: string; after?: string; limit?: number } = {}): Generator<string> {
    // Only the options given: lmdb-js reads `start: undefined` as a key to start from.
    const options: { start?: string; exclusiveStart?: boolean; limit?: number } = {};
    if (range.after !== undefined) {
      options.start = range.after;
      options.exclusiveStart = true;
    } else if (range.start !== undefined) options.start = range.start;
    if (range.limit !== undefined) options.limit = range.limit;
    yield* this.#entries.getKeys(options);
  }

  /** Records in key order from `start` or after `after`: the admin listing. */
  *records(range: { start?: string; after?: string } = {}): Generator<{ id: string; value: StoredValue }> {
    const options: { start?: string; exclusiveStart?: boolean } = {};
    if (range.after !== undefined) {
      options.start = range.after;
      options.exclusiveStart = true;
    } else if (range.start !== undefined) options.start = range.start;
    for (const { key, value } of this.#entries.getRange(options)) yield { id: key, value };
  }

  /** Every variant entry stored under a primary key with Vary (its marker excluded). */
  *variants(storage: string): Generator<{ id: string; record: EntryRecord }> {
    for (const { key, value } of this.#entries.getRange(variantRange(storage))) {
      if (value.kind === 'entry') yield { id: key, record: value };
    }
  }

  /** Variant ids indexed under `tag`, in order, after `after`, at most `limit`: the tag scan. */
  *tagged(tag: string, range: { after?: string; limit?: number } = {}): Generator<string> {
    const options =
      range.after === undefined
        ? { limit: range.limit }
        : { start: range.after, exclusiveStart: true, limit: range.limit };
    yield* this.#tags.getValues(tag, options);
  }

  /** How many variant ids are indexed under `tag` (the total a tag purge's progress counts to). */
  countTagged(tag: string): number {
    return this.#tags.getValuesCount(tag);
  }

  /**
   * How many record keys start with `prefix` ('' counts every key): the total a prefix purge's
   * progress counts to. A read-only range count, with no record decoded.
   */
  countKeys(prefix: string): number {
    if (prefix === '') return this.#entries.getKeysCount({});
    const end = `${prefix.slice(0, -1)}${String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)}`;
    return this.#entries.getKeysCount({ start: prefix, end });
  }

  /** Inside a write transaction: drops one tag index entry (its variant is gone). */
  untagInTxn(tag: string, id: string): void {
    this.#tags.remove(tag, id);
  }

  /**
   * Variants with their last access time and cost, least recently used first: the eviction
   * order, read from the access-order index (nothing loaded or sorted beyond `limit`). `after`
   * continues past a variant returned before (its id and time).
   */
  evictionOrder(
    range: { after?: { id: string; time: number }; limit?: number } = {},
  ): Array<{ id: string; time: number; cost: number }> {
    const options: { start?: [number, string]; exclusiveStart?: boolean; limit?: number } = {};
    if (range.after !== undefined) {
      options.start = [range.after.time, range.after.id];
      options.exclusiveStart = true;
    }
    if (range.limit !== undefined) options.limit = range.limit;
    const candidates: Array<{ id: string; time: number; cost: number }> = [];
    for (const { key, value } of this.#accessOrder.getRange(options)) {
      candidates.push({ id: key[1], time: key[0], cost: value });
    }
    return candidates;
  }

  /** Keys of every stored chunk ([bodyId, index]): the orphan sweep. */
  chunkKeys(): Iterable<[string, number]> {
    return this.#chunks.getKeys({});
  }

  /** Writes one body chunk (a fill's writer); resolves when committed. */
  putChunk(bodyId: string, index: number, chunk: Buffer): Promise<boolean> {
    return this.#chunks.put([bodyId, index], chunk);
  }

  /**
   * Writes chunks [first, first + chunks.length) of a body in one write transaction, copied
   * into LMDB by lmdb-js's writer thread; resolves when committed.
   */
  putChunks(bodyId: string, first: number, chunks: readonly Buffer[]): Promise<unknown> {
    return this.#chunks.batch(() => {
      for (let i = 0; i < chunks.length; i++) void this.#chunks.put([bodyId, first + i], chunks[i]!);
    });
  }

  /** Inside a write transaction: removes chunks by key (orphans). */
  removeChunksInTxn(keys: Iterable<[string, number]>): void {
    for (const key of keys) this.#chunks.remove(key);
  }

  /**
   * Starts a new read snapshot: what another process committed in this event-loop turn
   * becomes visible (lmdb-js keeps one snapshot per turn).
   */
  resetReadTxn(): void {
    this.#entries.resetReadTxn();
  }

  /** Resolves when every write queued so far is durable. */
  flushed(): Promise<void> {
    return Promise.resolve(this.#entries.flushed).then(() => {});
  }

  /** A `meta` value (the keys are listed in meta-keys.ts). */
  readMeta(name: string): unknown {
    return this.#meta.get(name);
  }

  /** Writes a `meta` value: inside a write transaction, part of it; outside, its own. */
  writeMeta(name: string, value: unknown): Promise<boolean> {
    return this.#meta.put(name, value);
  }

  /** Writes a `meta` value durably before returning. */
  writeMetaSync(name: string, value: unknown): void {
    this.#meta.putSync(name, value);
  }

  /** `meta` keys under a prefix (META.*Prefix), with their values. */
  *metaUnder(prefix: string): Generator<{ key: string; value: unknown }> {
    for (const { key, value } of this.#meta.getRange({ start: prefix, end: `${prefix}\uffff` })) {
      yield { key, value };
    }
  }

  /** One purge-log record by sequence (purge-log.ts owns its shape). */
  logGet<T>(sequence: number): T | undefined {
    return this.#purges.get(sequence) as T | undefined;
  }

  /** Inside a write transaction: writes one purge-log record. */
  logPutInTxn<T>(sequence: number, value: T): void {
    void this.#purges.put(sequence, value);
  }

  /** Purge-log records in sequence order, from `start`, at most `limit`. */
  *logRange<T>(range: { start?: number; limit?: number } = {}): Generator<{ sequence: number; value: T }> {
    for (const { key, value } of this.#purges.getRange(range)) yield { sequence: key, value: value as T };
  }

  /** Purge-log sequences in order, below `end`, at most `limit`. */
  logSequences(range: { end?: number; limit?: number } = {}): number[] {
    return [...this.#purges.getKeys(range)];
  }

  /** Removes purge-log records, in their own write transaction. */
  logRemove(sequences: number[]): Promise<void> {
    return this.write(() => {
      for (const sequence of sequences) this.#purges.remove(sequence);
    });
  }

  /** Writes the access times noted since the last flush (one batched transaction). */
  flushAccess(): Promise<void> {
    if (this.#accessed.size === 0) return Promise.resolve();
    const accessed = [...this.#accessed];
    this.#accessed.clear();
    return this.write(() => {
      for (const [id, time] of accessed) {
        const current = this.#access.get(id);
        if (current !== undefined) this.#setAccessInTxn(id, time, current[1]);
      }
    });
  }

  usage(): { bytes: number; entries: number } {
    return { bytes: this.accountedBytes(), entries: this.#access.getCount() };
  }

  /** The stored bytes accounted against cache.maxSize (one read, without usage()'s count of entries). */
  accountedBytes(): number {
    return (this.#meta.get(META.bytes) as number | undefined) ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** close() finished closing the LMDB environment (false while open, or when it timed out). */
  get environmentClosed(): boolean {
    return this.#environmentClosed;
  }

  /**
   * Writes a compacted copy of the environment into the directory `dir` (LMDB's data file never
   * shrinks by itself; offline only: `strata cache compact`): every database copied record by
   * record in write transactions of at most COMPACT_BATCH_BYTES, no free pages. Not LMDB's own
   * compacting copy (lmdb-js `backup(dir, true)`): a node started on such a copy of a cache with
   * an eviction history aborted in mdb_page_alloc ("key.mv_size > 0") at its first writes, on
   * every start.
   */
  async compactTo(dir: string): Promise<void> {
    await this.flushAccess().catch(() => {});
    // Bodies no record references (evicted or replaced within their grace period when the node
    // stopped, fills cut by a crash) are left behind, as the startup sweep would remove them.
    const referenced = new Set<string>();
    for (const { value } of this.#entries.getRange({}))
      if (value?.kind === 'entry') referenced.add(value.bodyId);
    const target = open({ path: dir, maxDbs: 16, pageSize: 4096, eventTurnBatching: false });
    try {
      for (const { name, dupSort } of DATABASES) {
        const raw = { name, encoding: 'binary', keyEncoding: 'binary', dupSort } as const;
        const chunks = name === 'chunks';
        // Chunk keys decoded ([bodyId, index]) to tell orphans; every other key copied as it is.
        const from = chunks ? this.#chunks : this.#env.openDB<Buffer, Buffer>(raw);
        const to = chunks
          ? target.openDB<Buffer, [string, number]>({ name, encoding: 'binary' })
          : target.openDB<Buffer, Buffer>(raw);
        let batch: Array<[Key, Buffer]> = [];
        let bytes = 0;
        const flush = () => {
          const records = batch;
          target.transactionSync(() => {
            for (const [key, value] of records) (to as Database<Buffer, Key>).putSync(key, value);
          });
          batch = [];
          bytes = 0;
        };
        for (const { key, value } of (from as Database<Buffer, Key>).getRange({})) {
          if (chunks && !referenced.has((key as [string, number])[0])) continue;
          batch.push([Buffer.isBuffer(key) ? Buffer.from(key) : key, Buffer.from(value)]);
          bytes += value.length;
          if (bytes >= COMPACT_BATCH_BYTES || batch.length >= 10_000) flush();
        }
        flush();
      }
      await target.flushed;
    } finally {
      await target.close();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#gathered.close().catch(() => {});
    await this.flushAccess().catch(() => {});
    await Promise.all(this.#removals);
    this.#closed = true;
    guarded.delete(this);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    // lmdb-js can wait for ever on a write queue that a full disk broke: shutdown must not hang.
    const closed = await within(this.#env.close(), performance.now() + CLOSE_TIMEOUT_MS);
    this.#environmentClosed = closed;
    if (!closed) this.options.log.warn({ ms: CLOSE_TIMEOUT_MS }, 'cache environment did not close in time');
  }
}

const guarded = new Set<CacheStore>();
let guardInstalled = false;

/**
 * When a batch commit fails (disk full, I/O error), lmdb-js rejects promises of its own that
 * no caller can reach. Those rejections are storage failures, not bugs: they pause storing
 * instead of ending the process. Every other unhandled rejection still ends it, as by default.
 */
function guardCommitFailures(store: CacheStore): void {
  if (!guardInstalled) {
    guardInstalled = true;
    process.on('unhandledRejection', (reason) => {
      if (reason instanceof Error && 'commitError' in reason) {
        for (const open of guarded) if (!open.closed) open.writeFailed(reason);
        return;
      }
      process.nextTick(() => {
        throw reason;
      });
    });
  }
  guarded.add(store);
}

/** LMDB's page size (the environment is opened with it). */
const PAGE_SIZE = 4096;
/** Largest value LMDB keeps on a leaf page, shared with other records, at this page size. */
const INLINE_VALUE_MAX = 1900;
/** A leaf node's header and a chunk key ([body id, index]). */
const NODE_BYTES = 64;

/**
 * What a body's chunks take in LMDB: a small chunk sits on a leaf page beside others (its bytes
 * and a node), a larger one on overflow pages of its own. Counting every body as whole chunks of
 * cache.chunkSize made each 1 KB body waiting out its grace period weigh 256 KiB, and a cache
 * of small objects was evicted down to half its low-water mark at every pass under churn.
 */
function bodyDiskBytes(chunks: number, size: number): number {
  if (chunks === 0) return 0;
  const chunk = Math.ceil(size / chunks);
  const each =
    chunk <= INLINE_VALUE_MAX ? chunk + NODE_BYTES : Math.ceil((chunk + 16) / PAGE_SIZE) * PAGE_SIZE;
  return chunks * each;
}

/** A secondary key without its Accept-Encoding line: what the representations of one object share. */
function withoutCoding(secondary: string): string {
  return secondary.replace(/(^|\n)accept-encoding=[^\n]*\n/, '$1');
}

/**
 * Whether `made`, stored under a coding's bucket beside the identity entry `previous`, is a
 * coding the node made (derive.ts) of that object: marked `made` (and, with an entity tag,
 * carrying the origin's as originEtag), whatever identity entry it was made from. A 304 that
 * refreshed the identity entry (or the coding) since moved their storedAt apart, and the coding
 * must still go with the bytes it was made from. Codings the origin sent stay.
 */
function madeFrom(made: EntryRecord, previous: EntryRecord): boolean {
  if (made.made === true || made.originEtag !== undefined) return true;
  // A record stored before `made` was: its storedAt is the only mark left.
  return previous.etag === undefined && made.storedAt === previous.storedAt;
}

/** A compressible identity entry or a coding the node made: evicted with its object's others. */
function representation(record: EntryRecord): boolean {
  return record.compressible === true || record.originEtag !== undefined || record.made === true;
}
