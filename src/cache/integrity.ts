/**
 * Checksums that let the store notice damaged data instead of serving it: a CRC-32 of each
 * body chunk (kept in the record, `sums`) and of the record itself (`sum`). Both are written
 * on the write path and checked when a record is first decoded in a process and when a chunk
 * is first read from LMDB, never on a hit served from memory.
 */
import { crc32 } from 'node:zlib';
import type { EntryRecord, StoredValue } from './record.ts';

/** The record's checksum: over every field but `sum`, in the order they were written. */
export function recordSum(record: Omit<EntryRecord, 'sum'>): number {
  return crc32(JSON.stringify(record));
}

/** The record with its checksum set (replacing any old one). */
export function sealRecord(record: EntryRecord): EntryRecord {
  // A new record (a fill's) has no sum yet: one copy, the sum after its fields as below.
  if (!Object.hasOwn(record, 'sum')) return { ...record, sum: recordSum(record) };
  const { sum: _old, ...rest } = record;
  return { ...rest, sum: recordSum(rest) };
}

export function chunkSum(chunk: Uint8Array): number {
  return crc32(chunk);
}

/**
 * Whether a decoded value has the shape the hit path relies on and, for a sealed record, its
 * checksum matches. Records written before checksums (schema 1) carry none and pass on shape.
 */
export function intact(value: unknown): value is StoredValue {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Omit<Partial<EntryRecord>, 'kind'> & { kind?: unknown; fields?: unknown };
  if (v.kind === 'vary') return Array.isArray(v.fields) && v.fields.every((f) => typeof f === 'string');
  if (v.kind !== 'entry') return false;
  if (
    typeof v.status !== 'number' ||
    !Array.isArray(v.headers) ||
    typeof v.size !== 'number' ||
    typeof v.chunks !== 'number' ||
    typeof v.bodyId !== 'string' ||
    typeof v.url !== 'string'
  )
    return false;
  if (v.sum === undefined) return true;
  const { sum, ...rest } = v as EntryRecord;
  return recordSum(rest) === sum;
}
