/** The cache store contract (test/helpers/store-contract.ts) run against CacheStore on LMDB. */
import { pino } from 'pino';
import { CacheStore } from '../../../src/cache/store.ts';
import { storeContractTests } from '../../helpers/store-contract.ts';

storeContractTests('CacheStore (LMDB)', (dir, options) => {
  return new CacheStore({
    dir,
    maxSize: 1 << 30,
    chunkSize: 1024,
    memorySize: 1 << 20,
    memoryObjectSize: 1 << 16,
    log: pino({ level: 'silent' }),
    now: options.now,
    bodyGraceMs: 0,
    ...(options.maxVariants === undefined ? {} : { maxVariants: options.maxVariants }),
  });
});
