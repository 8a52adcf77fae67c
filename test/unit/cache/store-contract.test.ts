/** The cache store contract (test/helpers/store-contract.ts) run against CacheStore on LMDB. */
import { storeContractTests } from '../../helpers/store-contract.ts';
import { testStore } from '../../helpers/test-store.ts';

storeContractTests('CacheStore (LMDB)', (dir, options) => {
  return testStore(dir, {
    now: options.now,
    bodyGraceMs: 0,
    ...(options.maxVariants === undefined ? {} : { maxVariants: options.maxVariants }),
  });
});
