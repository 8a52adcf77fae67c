/** A CacheStore for unit tests: 1 GiB, 1 KiB chunks, a 1 MiB memory tier, silent, on `dir`. */
import { pino } from 'pino';
import { CacheStore, type StoreOptions } from '../../src/cache/store.ts';

export function testStore(dir: string, overrides: Partial<StoreOptions> = {}): CacheStore {
  return new CacheStore({
    dir,
    maxSize: 1 << 30,
    chunkSize: 1024,
    memorySize: 1 << 20,
    memoryObjectSize: 1 << 16,
    log: pino({ level: 'silent' }),
    now: Date.now,
    ...overrides,
  });
}
