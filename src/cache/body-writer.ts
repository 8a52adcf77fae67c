/**
 * Writes one fill's body as chunks under a fresh body id, then commits the record in the
 * same transaction as the last chunk. Until that commit nothing of the fill is visible;
 * an aborted fill's chunks are removed (and any left by a crash are swept at startup).
 * Readers in other workers read the chunks by [bodyId, index] as each write resolves.
 */
import { chunkSum } from './integrity.ts';
import type { EntryRecord } from './record.ts';

/** What a writer needs of the store (CacheStore); declared here so neither module imports the other's. */
export interface BodyStore {
  putChunk(bodyId: string, index: number, chunk: Buffer): Promise<boolean>;
  putChunks(bodyId: string, first: number, chunks: readonly Buffer[]): Promise<unknown>;
  /** Runs the commit's work in a write transaction (shared with other commits: gathered-commits.ts). */
  commitGathered<T>(work: () => T, atOnce?: boolean): Promise<T>;
  commitEntryInTxn(storage: string, id: string, record: EntryRecord): void;
  removeBodyLater(bodyId: string, chunks: number, size: number): void;
  writeSucceeded(): void;
  writeFailed(error: unknown): void;
}

export type CommitResult = 'stored' | 'failed' | 'superseded';

export class BodyWriter {
  readonly bodyId: string;
  readonly #store: BodyStore;
  readonly #storage: string;
  #chunks = 0;
  #size = 0;
  /** CRC-32 of each chunk, stored with the record (integrity.ts). */
  readonly #sums: number[] = [];
  #failed = false;
  #done = false;
  #complete = false;
  #aborted = false;
  /** A client waits for the commit: it does not wait for others to share its transaction. */
  #atOnce = false;
  /** Chunks written but not yet confirmed committed (queued or in the batch being written). */
  #pending = 0;
  /** The batch being written, if any. */
  #writing: Promise<boolean> | undefined;
  /** Chunks waiting for the batch being written to commit; they go together in the next one. */
  #queue: Buffer[] = [];
  /** Index of the queue's first chunk. */
  #queueStart = 0;
  /** Resolves when the queued chunks are committed, true, or not written, false (made with the queue). */
  #queued: { promise: Promise<boolean>; resolve: (written: boolean) => void } | undefined;

  constructor(store: BodyStore, storage: string, bodyId: string) {
    this.#store = store;
    this.#storage = storage;
    this.bodyId = bodyId;
  }

  /**
   * A client is answered only once this fill is committed (from the stored entry): its commit
   * goes at once instead of waiting cache.commitDelay for others (gathered-commits.ts).
   */
  commitAtOnce(): void {
    this.#atOnce = true;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Chunks handed to the writer whose commit has not been confirmed yet. */
  get inFlight(): number {
    return this.#pending;
  }

  get chunks(): number {
    return this.#chunks;
  }

  /**
   * Queues one full chunk; resolves when its write ended (pace the origin on it): true once it
   * is committed, false when it was not written (the write failed, or the fill was given up
   * first). One batch per fill is written at a time, and chunks sealed meanwhile go together in
   * the next one: a write transaction per chunk costs LMDB about as much as the chunk's bytes.
   */
  write(chunk: Buffer): Promise<boolean> {
    const index = this.#chunks++;
    this.#size += chunk.length;
    this.#sums.push(chunkSum(chunk));
    this.#pending++;
    if (this.#writing === undefined) return this.#writeBatch(index, [chunk]);
    if (this.#queue.length === 0) {
      this.#queueStart = index;
      let resolve!: (written: boolean) => void;
      const promise = new Promise<boolean>((done) => {
        resolve = done;
      });
      this.#queued = { promise, resolve };
    }
    this.#queue.push(chunk);
    return this.#queued!.promise;
  }

  #writeBatch(first: number, chunks: Buffer[]): Promise<boolean> {
    const written = this.#store.putChunks(this.bodyId, first, chunks).then(
      () => {
        this.#store.writeSucceeded();
        return true;
      },
      (error: unknown) => {
        this.#fail(error);
        return false;
      },
    );
    const batch = written.then((ok) => {
      this.#pending -= chunks.length;
      this.#writing = undefined;
      const queued = this.#queued;
      if (queued === undefined) return ok;
      const next = this.#queue;
      this.#queue = [];
      this.#queued = undefined;
      // A failed or abandoned fill writes nothing more: its chunks are never read.
      if (this.#failed || this.#aborted) {
        this.#pending -= next.length;
        queued.resolve(false);
        return ok;
      }
      void this.#writeBatch(this.#queueStart, next).then(queued.resolve);
      return ok;
    });
    this.#writing = batch;
    return batch;
  }

  /** Resolves when every chunk written so far is committed (or failed). */
  async #settled(): Promise<void> {
    for (let i = 0; i < 1_000_000 && (this.#writing !== undefined || this.#queued !== undefined); i++) {
      await (this.#queued?.promise ?? this.#writing);
    }
  }

  #fail(error: unknown): void {
    this.#failed = true;
    this.#store.writeFailed(error);
  }

  /**
   * Writes the last chunk and the record atomically. `stillWanted` runs inside the write
   * transaction: returning false (a purge raced the fill) commits nothing.
   */
  async commit(
    id: string,
    record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'>,
    lastChunk: Buffer | undefined,
    stillWanted: () => boolean = () => true,
  ): Promise<CommitResult> {
    this.#done = true;
    await this.#settled();
    if (this.#failed) {
      this.abort();
      return 'failed';
    }
    const lastIndex = lastChunk !== undefined && lastChunk.length > 0 ? this.#chunks++ : -1;
    const size = this.#size + (lastIndex >= 0 ? lastChunk!.length : 0);
    this.#size = size;
    const sums = lastIndex >= 0 ? [...this.#sums, chunkSum(lastChunk!)] : this.#sums;
    const full: EntryRecord = { ...record, bodyId: this.bodyId, chunks: this.#chunks, size, sums };
    try {
      const stored = await this.#store.commitGathered(() => {
        // Written even when the record is not: readers in other workers still need it.
        if (lastIndex >= 0) void this.#store.putChunk(this.bodyId, lastIndex, lastChunk!);
        if (!stillWanted()) return false;
        this.#store.commitEntryInTxn(this.#storage, id, full);
        return true;
      }, this.#atOnce);
      this.#complete = true;
      if (!stored) this.abort();
      return stored ? 'stored' : 'superseded';
    } catch (error) {
      this.#fail(error);
      this.abort();
      return 'failed';
    }
  }

  /** Gives up the fill: its chunks are removed once no reader can still need them. */
  abort(): void {
    this.#done = true;
    this.#aborted = true;
    if (this.#chunks > 0) this.#store.removeBodyLater(this.bodyId, this.#chunks, this.#size);
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * After `commit`: every chunk of the body is in LMDB (the record was committed, or a purge
   * superseded it and the chunks stay readable for their grace period).
   */
  get complete(): boolean {
    return this.#complete;
  }
}
