/**
 * The persistent cache: one LMDB environment, named databases (see docs/architecture.md).
 * Reads are synchronous; writes are batched by lmdb-js into transactions. An entry
 * becomes visible only when its record is committed, in the same transaction as its
 * last chunk, so a fill that dies leaves nothing servable.
 */
import { randomBytes } from 'node:crypto';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import { EdgeError } from '../errors.ts';
import { BodyWriter } from './body-writer.ts';
import { variantKey, variantRange } from './key.ts';
import { MemoryTier } from './memory-tier.ts';
import { secondaryKey } from './policy/vary.ts';
import { type EntryRecord, RECORD_VERSION, type StoredValue, type VaryMarker } from './record.ts';

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

/** Decoded records kept per process before the table starts over. */
const DECODED_LIMIT = 50_000;

const MISS: Lookup = { kind: 'miss' };
/** How long a replaced or removed body stays readable for responses still streaming it. */
const BODY_GRACE_MS = 60_000;

export class CacheStore {
  readonly env: RootDatabase;
  readonly entries: Database<StoredValue, string>;
  readonly chunks: Database<Buffer, [string, number]>;
  readonly tags: Database<string, string>;
  readonly access: Database<[number, number], string>;
  readonly meta: Database<unknown, string>;
  readonly memory: MemoryTier;
  readonly options: StoreOptions;
  readonly #accessed = new Map<string, number>();
  #bodies = 0;
  readonly #removals = new Set<Promise<void>>();
  /** Decoded records by key, with the bytes they were decoded from (see #read). */
  readonly #decoded = new Map<string, { bytes: Buffer; value: StoredValue }>();
  #writableAfter = 0;
  #closed = false;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: StoreOptions) {
    this.options = options;
    // eventTurnBatching off: atomicity comes from explicit transactions, and with it on lmdb-js
    // leaves a promise of its own unhandled when a batch commit fails (disk full).
    this.env = open({ path: options.dir, maxDbs: 16, pageSize: 4096, eventTurnBatching: false });
    this.entries = this.env.openDB<StoredValue, string>({
      name: 'entries',
      sharedStructuresKey: Symbol.for('structures'),
    });
    this.chunks = this.env.openDB<Buffer, [string, number]>({ name: 'chunks', encoding: 'binary' });
    this.tags = this.env.openDB<string, string>({ name: 'tags', dupSort: true, encoding: 'ordered-binary' });
    this.access = this.env.openDB<[number, number], string>({ name: 'access' });
    this.meta = this.env.openDB<unknown, string>({ name: 'meta' });
    this.memory = new MemoryTier(options.memorySize, options.memoryObjectSize);
    if (this.meta.get('schema') === undefined) this.meta.putSync('schema', RECORD_VERSION);
    guardCommitFailures(this);
  }

  /** Synchronous: the variant of `storage` that matches the request's Vary fields. */
  lookup(storage: string, headers: Record<string, string | string[] | undefined>): Lookup {
    const value = this.#read(storage);
    if (value === undefined) return MISS;
    if (value.kind === 'entry') return { kind: 'found', id: storage, record: value };
    const id = variantKey(storage, secondaryKey(value.fields, headers));
    const variant = this.#read(id);
    if (variant === undefined || variant.kind !== 'entry') return { kind: 'vary-miss', fields: value.fields };
    return { kind: 'found', id, record: variant };
  }

  /**
   * One record, decoded at most once per change: the raw bytes are read from LMDB on every
   * call (so writes by any process are seen at once) and compared with the bytes the cached
   * decoded value came from. Returned records are shared: never mutate them.
   */
  #read(id: string): StoredValue | undefined {
    const view = this.#rawBytes(id);
    if (view === undefined) {
      this.#decoded.delete(id);
      return undefined;
    }
    const cached = this.#decoded.get(id);
    if (cached?.bytes.equals(view)) return cached.value;
    const bytes = Buffer.from(view);
    const value = this.entries.get(id);
    if (value === undefined) return undefined;
    // Cache it only if nothing changed between the two reads.
    const again = this.#rawBytes(id);
    if (again?.equals(bytes)) {
      if (this.#decoded.size >= DECODED_LIMIT) this.#decoded.clear();
      this.#decoded.set(id, { bytes, value });
    }
    return value;
  }

  /** The record's encoded bytes, valid until the next LMDB read (no copy). */
  #rawBytes(id: string): Buffer | undefined {
    const entries = this.entries as Database<StoredValue, string> & { lastSize: number };
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
    const parts: Buffer[] = [];
    for (let i = 0; i < record.chunks; i++) {
      const chunk = this.chunks.getBinary([record.bodyId, i]);
      if (chunk === undefined) return undefined;
      parts.push(chunk);
    }
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, record.size);
    if (body.length !== record.size) return undefined;
    this.memory.set(record.bodyId, body);
    return body;
  }

  chunk(bodyId: string, index: number): Buffer | undefined {
    return this.chunks.getBinary([bodyId, index]);
  }

  /** False while writes are failing (map or disk full): misses then pass through unstored. */
  get writable(): boolean {
    return this.options.now() >= this.#writableAfter;
  }

  writeFailed(error: unknown): void {
    // lmdb-js attaches the commit's own rejected promise to the error: mark it handled.
    const commitError = (error as { commitError?: Promise<unknown> } | undefined)?.commitError;
    if (commitError && typeof commitError.catch === 'function') commitError.catch(() => {});
    if (this.writable) {
      const failure = new EdgeError('EDGE_ERR_STORE_WRITE', 'cache write failed; storing paused for 30s', {
        cause: error,
      });
      this.options.log.error({ err: error, code: failure.code }, failure.message);
    }
    this.#writableAfter = this.options.now() + 30_000;
  }

  /**
   * Unique across processes and restarts: creation time (the orphan sweep reads it), a random
   * prefix drawn once per process, and a counter (no random draw per fill).
   */
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
    const current = this.entries.get(storage);
    if (record.vary.length > 0) {
      const marker: VaryMarker = { kind: 'vary', v: RECORD_VERSION, fields: record.vary };
      if (current?.kind === 'entry') this.#removeVariantInTxn(storage, current);
      if (current?.kind !== 'vary' || current.fields.join() !== record.vary.join()) {
        this.#removeVariantsInTxn(storage);
        this.entries.put(storage, marker);
      }
    } else if (current?.kind === 'vary') {
      this.#removeVariantsInTxn(storage);
    }
    const previous = id === storage ? (current?.kind === 'entry' ? current : undefined) : this.#entryAt(id);
    if (previous !== undefined) this.#removeVariantInTxn(id, previous);
    this.entries.put(id, record);
    for (const tag of record.tags) this.tags.put(tag, id);
    this.access.put(id, [this.options.now(), entryCost(record)]);
    this.#addBytes(entryCost(record));
  }

  #entryAt(id: string): EntryRecord | undefined {
    const value = this.entries.get(id);
    return value?.kind === 'entry' ? value : undefined;
  }

  #addBytes(delta: number): void {
    const bytes = (this.meta.get('bytes') as number | undefined) ?? 0;
    this.meta.put('bytes', Math.max(0, bytes + delta));
  }

  /** Inside a write transaction: forget one variant, its tags and (later) its body. */
  #removeVariantInTxn(id: string, record: EntryRecord): void {
    this.entries.remove(id);
    this.access.remove(id);
    for (const tag of record.tags) this.tags.remove(tag, id);
    this.#addBytes(-entryCost(record));
    this.#accessed.delete(id);
    this.removeBodyLater(record.bodyId, record.chunks);
  }

  #removeVariantsInTxn(storage: string): number {
    let removed = 0;
    for (const { key, value } of this.entries.getRange(variantRange(storage))) {
      if (value.kind === 'entry') {
        this.#removeVariantInTxn(key, value);
        removed++;
      }
    }
    return removed;
  }

  /** Removes every variant of a primary key (a hard purge or eviction). Returns how many. */
  removeKeyInTxn(storage: string): number {
    const current = this.entries.get(storage);
    if (current === undefined) return 0;
    if (current.kind === 'entry') {
      this.#removeVariantInTxn(storage, current);
      return 1;
    }
    this.entries.remove(storage);
    return this.#removeVariantsInTxn(storage);
  }

  /** Eviction of one variant; the primary key's Vary marker goes with its last variant. */
  removeEvictedInTxn(id: string): boolean {
    const removed = this.removeVariantInTxn(id);
    const separator = id.indexOf('\u0000');
    if (removed && separator > 0) {
      const storage = id.slice(0, separator);
      let left = false;
      for (const _ of this.entries.getKeys({ ...variantRange(storage), limit: 1 })) left = true;
      if (!left) this.entries.remove(storage);
    }
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
    const current = this.entries.get(storage);
    if (current === undefined) return 0;
    if (current.kind === 'entry') return this.invalidateVariantInTxn(storage) ? 1 : 0;
    let count = 0;
    for (const { key } of this.entries.getRange(variantRange(storage))) {
      if (this.invalidateVariantInTxn(key)) count++;
    }
    return count;
  }

  invalidateVariantInTxn(id: string): boolean {
    const record = this.#entryAt(id);
    if (record === undefined || record.invalidated) return false;
    this.entries.put(id, { ...record, invalidated: true });
    return true;
  }

  /**
   * Runs `work` in a write transaction. A failed commit (map or disk full, I/O error) pauses
   * storing and rejects; it never surfaces as an unhandled rejection.
   */
  write<T>(work: () => T): Promise<T> {
    return this.entries.transaction(work).catch((error: unknown) => {
      this.writeFailed(error);
      throw error;
    });
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
    return this.write(() => {
      const name = `gen:${storage}`;
      this.meta.put(name, ((this.meta.get(name) as number | undefined) ?? 0) + 1);
      return this.invalidateKeyInTxn(storage);
    });
  }

  /**
   * What a fill or refresh of `storage` compares at commit: it changes with every purge
   * (node-wide sequence) and with every invalidation of this key. Another value: void.
   */
  purgeGeneration(storage: string): string {
    return `${(this.meta.get('purgeSeq') as number | undefined) ?? 0}:${(this.meta.get(`gen:${storage}`) as number | undefined) ?? 0}`;
  }

  bumpPurgeGenerationInTxn(): void {
    this.meta.put('purgeSeq', ((this.meta.get('purgeSeq') as number | undefined) ?? 0) + 1);
  }

  /**
   * Replaces a record's headers and freshness after a 304, if its body is still the same and
   * no purge or invalidation happened since the revalidation began (`generation`).
   */
  refresh(id: string, record: EntryRecord, generation: unknown): Promise<boolean> {
    return this.write(() => {
      if (this.purgeGeneration(id.split('\u0000')[0]!) !== generation) return false;
      const current = this.#entryAt(id);
      if (current === undefined || current.bodyId !== record.bodyId) return false;
      this.entries.put(id, record);
      return true;
    });
  }

  removeBodyLater(bodyId: string, chunks: number): void {
    if (this.#closed) return;
    if (this.options.bodyGraceMs === 0) {
      // In a write transaction this runs inside it; otherwise close() waits for it.
      const removal = this.write(() => {
        for (let i = 0; i < chunks; i++) this.chunks.remove([bodyId, i]);
      }).catch(() => {});
      this.#removals.add(removal);
      void removal.finally(() => this.#removals.delete(removal));
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.memory.delete(bodyId);
      if (this.#closed) return;
      this.write(() => {
        for (let i = 0; i < chunks; i++) this.chunks.remove([bodyId, i]);
      }).catch(() => {});
    }, this.options.bodyGraceMs ?? BODY_GRACE_MS);
    timer.unref();
    this.#timers.add(timer);
  }

  /** Writes the access times noted since the last flush (one batched transaction). */
  flushAccess(): Promise<void> {
    if (this.#accessed.size === 0) return Promise.resolve();
    const accessed = [...this.#accessed];
    this.#accessed.clear();
    return this.write(() => {
      for (const [id, time] of accessed) {
        const current = this.access.get(id);
        if (current !== undefined) this.access.put(id, [time, current[1]]);
      }
    });
  }

  usage(): { bytes: number; entries: number } {
    return { bytes: (this.meta.get('bytes') as number | undefined) ?? 0, entries: this.access.getCount() };
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flushAccess().catch(() => {});
    await Promise.all(this.#removals);
    this.#closed = true;
    guarded.delete(this);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await this.env.close();
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
