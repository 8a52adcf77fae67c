/**
 * A stored response's commit made while the store closes (a fill that ends during a drain's
 * last steps): it goes at once, into LMDB's queue before the environment closes, not on the
 * cache.commitDelay timer, which fired after the close and threw "The environment is already
 * closed" from lmdb-js's queue (an uncaught exception: the process ended).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { entryRecord } from '../../helpers/records.ts';
import { testStore } from '../../helpers/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-closing-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a commit made while the store closes', () => {
  it('is committed before the environment closes, and found after a restart', async () => {
    const url = 'http://a.test/closing';
    const store = testStore(dir, { commitDelayMs: 200 });
    const closing = store.close();
    const committed = store.commitGathered(() => {
      store.commitEntryInTxn(url, url, entryRecord({ url, bodyId: 'closing-body' }));
      return true;
    });
    assert.equal(await committed, true);
    await closing;
    assert.ok(store.environmentClosed);
    // Past the delay: no timer of the store is left to fire on the closed environment.
    await sleep(300);
    const reopened = testStore(dir);
    try {
      const found = reopened.lookup(url, {});
      assert.equal(found.kind === 'found' && found.record.bodyId, 'closing-body');
    } finally {
      await reopened.close();
    }
  });
});
