/**
 * Direct access to a closed cache directory's LMDB databases, opened as CacheStore opens
 * them: for tests that must write what the store's own API never writes (an older schema,
 * a record of another version). Nothing in src/ goes around the store like this.
 */
import { type Database, open } from 'lmdb';

export interface RawDatabases {
  entries: Database<unknown, string>;
  tags: Database<string, string>;
  access: Database<[number, number], string>;
  accessOrder: Database<number, [number, string]>;
  meta: Database<unknown, string>;
  chunks: Database<Buffer, [string, number]>;
}

/** Runs `work` in one write transaction on the directory (no CacheStore may have it open). */
export async function withRawStore(dir: string, work: (db: RawDatabases) => void): Promise<void> {
  const env = open({ path: dir, maxDbs: 16, pageSize: 4096, eventTurnBatching: false });
  const db: RawDatabases = {
    entries: env.openDB<unknown, string>({ name: 'entries', sharedStructuresKey: Symbol.for('structures') }),
    tags: env.openDB<string, string>({ name: 'tags', dupSort: true, encoding: 'ordered-binary' }),
    access: env.openDB<[number, number], string>({ name: 'access' }),
    accessOrder: env.openDB<number, [number, string]>({ name: 'access-order' }),
    meta: env.openDB<unknown, string>({ name: 'meta' }),
    chunks: env.openDB<Buffer, [string, number]>({ name: 'chunks', encoding: 'binary' }),
  };
  try {
    await env.transaction(() => work(db));
  } finally {
    await env.close();
  }
}
