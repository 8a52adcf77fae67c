/**
 * Store schema upgrades, run once when a cache directory written by an older version is opened.
 *
 * Schema 2 → 3: the `access-order` index ([last access, variant key] → cost) is built from
 * `access`, so an eviction pass reads the least recently used variants in order instead of
 * loading and sorting every access record.
 *
 * Schema 1 → 2: variant keys were `<key>\0<digest>`. LMDB's ordered-binary encoding escapes
 * low bytes only in strings under 64 characters, so a longer variant key came back from range
 * reads as an array [key, digest] (inspection and prefix purges failed on them). Schema 2
 * separates with U+001F (key.ts); this rewrites every variant key in `entries`, `access` and
 * the values of `tags`. An array and a `\0`-string encode to the same bytes, so the old keys
 * are removed by what the range read returned.
 */
import type { Database } from 'lmdb';
import { VARIANT_SEPARATOR } from './key.ts';
import type { StoredValue } from './record.ts';

type OldKey = string | unknown[];

function newKey(key: OldKey): string | undefined {
  if (Array.isArray(key)) return key.map(String).join(VARIANT_SEPARATOR);
  return key.includes('\u0000') ? key.replaceAll('\u0000', VARIANT_SEPARATOR) : undefined;
}

/** The store's databases a migration rewrites (the store hands them over while opening). */
export interface StoreDatabases {
  entries: Database<StoredValue, string>;
  access: Database<[number, number], string>;
  accessOrder: Database<number, [number, string]>;
  tags: Database<string, string>;
}

/** Inside a write transaction: rewrites schema 1 keys. Returns how many were rewritten. */
export function migrateSchema1InTxn(store: StoreDatabases): number {
  let moved = 0;
  const entries = [...store.entries.getRange({})] as Array<{ key: OldKey; value: unknown }>;
  for (const { key, value } of entries) {
    const next = newKey(key);
    if (next === undefined) continue;
    store.entries.remove(key as string);
    store.entries.put(next, value as never);
    moved++;
  }
  const access = [...store.access.getRange({})] as Array<{ key: OldKey; value: [number, number] }>;
  for (const { key, value } of access) {
    const next = newKey(key);
    if (next === undefined) continue;
    store.access.remove(key as string);
    store.access.put(next, value);
  }
  const tags = [...store.tags.getRange({})] as Array<{ key: string; value: OldKey }>;
  for (const { key, value } of tags) {
    const next = newKey(value);
    if (next === undefined) continue;
    store.tags.remove(key, value as string);
    store.tags.put(key, next);
  }
  return moved;
}

/** Inside a write transaction: builds the access-order index from `access`. Returns its size. */
export function buildAccessOrderInTxn(store: StoreDatabases): number {
  for (const key of [...store.accessOrder.getKeys({})]) store.accessOrder.remove(key);
  let count = 0;
  for (const { key, value } of store.access.getRange({})) {
    store.accessOrder.put([value[0], key], value[1]);
    count++;
  }
  return count;
}
