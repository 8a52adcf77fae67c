/**
 * The stored form of one response (an entry): everything a hit needs, precomputed,
 * in one LMDB read. Stored as msgpack in the `entries` database.
 */
import type { StoredRange } from './policy/partial.ts';
import type { StoredFreshness } from './policy/reuse.ts';

export const RECORD_VERSION = 1;

export interface EntryRecord extends StoredFreshness {
  kind: 'entry';
  v: number;
  /** The primary cache key this entry belongs to (scheme://authority/path?query). */
  url: string;
  status: number;
  /** Flat [name, value, name, value, ...] list ready for writeHead (hop-by-hop and internal fields removed). */
  headers: string[];
  /** Body bytes. */
  size: number;
  /** Identifies the body chunks; unique per fill, so a body is immutable once written. */
  bodyId: string;
  chunks: number;
  chunkSize: number;
  etag: string | undefined;
  lastModified: string | undefined;
  contentEncoding: string | undefined;
  /** May answer requests carrying Authorization (RFC 9111 §3.5: public, s-maxage or must-revalidate). */
  authOk: boolean;
  /** Tags from Surrogate-Key / Cache-Tag. */
  tags: string[];
  /** Vary field names of this variant ([] when none). */
  vary: string[];
  /** The normalized secondary key this variant was stored under. */
  secondaryKey: string;
  /** Milliseconds since the epoch when stored or last refreshed. */
  storedAt: number;
  /** Freshness source, for inspection. */
  source: string;
  /**
   * Set on a partial entry (a stored 206, RFC 9111 §3.3): the piece of the representation its
   * body holds. Status is then 206 and Content-Range is not among the headers; such an entry
   * answers only Range requests wholly inside the piece, never a request for the whole.
   */
  range?: StoredRange;
  /**
   * Set on an identity entry that may get compressed siblings (docs/compression.md): its
   * variants are keyed by the Accept-Encoding bucket, and it is stored under `identity`.
   */
  compressible?: true;
  /**
   * Set on a representation the node compressed, or decoded from a stored origin-encoded one
   * (decode-stored.ts): the origin's entity tag, which its own (suffixed with the coding, or
   * weakened) stands for when revalidating with the origin.
   */
  originEtag?: string;
  /**
   * Set on a representation the node made from a stored identity entry (derive.ts), with or
   * without an entity tag: it goes with that entry (store.ts madeFrom), whatever refreshed either.
   */
  made?: true;
  /** Some headers are tier fields (Edge.tierFields): delivered to verified child tiers only. */
  tierFields?: true;
  /** CRC-32 of each body chunk, in order (absent on records written before schema 2). */
  sums?: number[];
  /** CRC-32 of the record's other fields (integrity.ts), set by the store on every write. */
  sum?: number;
}

/** Stored under the primary key when the response carries Vary. */
export interface VaryMarker {
  kind: 'vary';
  v: number;
  fields: string[];
}

export type StoredValue = EntryRecord | VaryMarker;

/** Field value of a stored header, case-insensitive, or undefined. */
export function storedHeader(record: Pick<EntryRecord, 'headers'>, name: string): string | undefined {
  const headers = record.headers;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === name) return headers[i + 1];
  }
  return undefined;
}
