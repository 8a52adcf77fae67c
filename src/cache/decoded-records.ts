/**
 * Records decoded from LMDB, kept per process so that a hit does not decode its record again.
 * Bounded by count and by the memory they hold: a decoded record keeps a copy of its encoded
 * bytes (to notice a change), its decoded fields (about as many bytes again: 17.5 KB for a
 * record with 8 KB of header fields, 2.4 KB with 400 B, read by the store alone), and on a
 * node the head a hit prepares from them (as many again: 9.3 KB a record of 2.7 KB in a node
 * that answered 6,000 of them twice). Counted as three times the encoded size plus 1 KiB.
 * Bounded by count alone, 50,000 records with 8 KB of header fields would hold over 875 MB.
 *
 * Two generations, so that every operation is O(1) and a hot record stays: new records go to
 * the young map; when it holds half the bound, it becomes the old map and the previous old map
 * is dropped whole. A record found in the old map moves back to the young one.
 */
import type { StoredValue } from './record.ts';

export interface DecodedRecord {
  /** The encoded bytes the value was decoded from (a copy of its own). */
  bytes: Buffer;
  value: StoredValue;
  /** The LMDB read snapshot it was last compared in (0: none); CacheStore sets it. */
  seen: number;
}

/** Default bound of the decoded records of one process, in bytes (decodedCost). */
export const DECODED_MAX_BYTES = 64 * 1024 * 1024;
/** Default bound in records. */
export const DECODED_MAX_RECORDS = 50_000;

/** What one decoded record is counted as holding, in bytes. */
export function decodedCost(record: DecodedRecord): number {
  return 3 * record.bytes.length + 1024;
}

export class DecodedRecords {
  #young = new Map<string, DecodedRecord>();
  #old = new Map<string, DecodedRecord>();
  #youngBytes = 0;
  #oldBytes = 0;
  readonly #halfBytes: number;
  readonly #halfRecords: number;

  constructor(maxBytes = DECODED_MAX_BYTES, maxRecords = DECODED_MAX_RECORDS) {
    this.#halfBytes = Math.floor(maxBytes / 2);
    this.#halfRecords = Math.max(1, Math.floor(maxRecords / 2));
  }

  get(id: string): DecodedRecord | undefined {
    const young = this.#young.get(id);
    if (young !== undefined) return young;
    const old = this.#old.get(id);
    if (old === undefined) return undefined;
    this.#old.delete(id);
    this.#oldBytes -= decodedCost(old);
    this.#add(id, old);
    return old;
  }

  /** Keeps `record` for `id`, replacing any; a record over half the bound is not kept. */
  set(id: string, record: DecodedRecord): void {
    this.delete(id);
    if (decodedCost(record) > this.#halfBytes) return;
    this.#add(id, record);
  }

  delete(id: string): void {
    const young = this.#young.get(id);
    if (young !== undefined) {
      this.#young.delete(id);
      this.#youngBytes -= decodedCost(young);
    }
    const old = this.#old.get(id);
    if (old !== undefined) {
      this.#old.delete(id);
      this.#oldBytes -= decodedCost(old);
    }
  }

  /** Bytes the kept records are counted as holding (decodedCost). */
  get bytes(): number {
    return this.#youngBytes + this.#oldBytes;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  #add(id: string, record: DecodedRecord): void {
    const cost = decodedCost(record);
    if (this.#youngBytes + cost > this.#halfBytes || this.#young.size >= this.#halfRecords) {
      this.#old = this.#young;
      this.#oldBytes = this.#youngBytes;
      this.#young = new Map();
      this.#youngBytes = 0;
    }
    this.#young.set(id, record);
    this.#youngBytes += cost;
  }
}
