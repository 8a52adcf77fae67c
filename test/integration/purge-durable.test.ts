import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { CacheStore } from '../../src/cache/store.ts';
import { PurgeLog } from '../../src/purge/purge-log.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { startAdminNode } from './purge-support.ts';

describe('the purge log across restarts', () => {
  let origin: TestOrigin;
  let dir: string;

  before(async () => {
    origin = await startOrigin({
      '/a': respond(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'k' }, 'a'),
    });
    dir = mkdtempSync(join(tmpdir(), 'strata-purge-durable-'));
  });
  after(async () => {
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps logged purges and continues their sequence after a restart', async () => {
    const first = await startAdminNode({ origin: origin.url, dir });
    const one = await first.purge({ urls: [`${first.base}/a`] });
    const two = await first.purge({ tags: ['k'], soft: true });
    await first.close({ keepDir: true });

    const second = await startAdminNode({ origin: origin.url, dir });
    try {
      assert.deepEqual(second.node.purge.log.get(one.sequence)?.command.urls, [`${first.base}/a`]);
      assert.equal(second.node.purge.log.get(two.sequence)?.command.soft, true);
      const three = await second.purge({ all: true });
      assert.equal(three.sequence, two.sequence + 1);
      assert.equal(second.node.purge.nodeId, first.node.purge.nodeId);
    } finally {
      await second.close({ keepDir: true });
    }
  });

  it('finishes at the next start a purge that a crash left half applied', async () => {
    const first = await startAdminNode({ origin: origin.url, dir });
    await first.get('/a');
    const key = `${first.base}/a`;
    assert.equal(first.node.store.lookup(key, {}).kind, 'found');
    await first.close({ keepDir: true });

    // What a crash between the log append and the last batch leaves: logged, not applied.
    const store = new CacheStore({
      dir: join(dir, 'cache'),
      maxSize: 1024 ** 3,
      chunkSize: 256 * 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log: pino({ level: 'silent' }),
      now: Date.now,
    });
    const log = new PurgeLog(store);
    const sequence = await store.write(() =>
      log.appendInTxn({
        command: { urls: [], prefixes: [], tags: ['k'], all: false, soft: false },
        at: Date.now(),
        path: [],
        applied: false,
      }),
    );
    await store.close();

    const second = await startAdminNode({ origin: origin.url, dir });
    try {
      assert.equal(second.node.store.lookup(key, {}).kind, 'miss');
      assert.equal(second.node.purge.log.get(sequence)?.applied, true);
      assert.equal([...second.node.store.tagged('k')].length, 0);
    } finally {
      await second.close({ keepDir: true });
    }
  });

  it('finishes at the next start a host purge a crash left unapplied', async () => {
    const first = await startAdminNode({ origin: origin.url, dir });
    await first.get('/a');
    const key = `${first.base}/a`;
    const host = new URL(first.base).host;
    assert.equal(first.node.store.lookup(key, {}).kind, 'found');
    await first.close({ keepDir: true });

    const store = new CacheStore({
      dir: join(dir, 'cache'),
      maxSize: 1024 ** 3,
      chunkSize: 256 * 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log: pino({ level: 'silent' }),
      now: Date.now,
    });
    const log = new PurgeLog(store);
    const sequence = await store.write(() =>
      log.appendInTxn({
        command: { urls: [], prefixes: [], tags: [], hosts: [host], all: false, soft: false },
        at: Date.now(),
        path: [],
        applied: false,
      }),
    );
    await store.close();

    const second = await startAdminNode({ origin: origin.url, dir });
    try {
      assert.equal(second.node.store.lookup(key, {}).kind, 'miss');
      assert.equal(second.node.purge.log.get(sequence)?.applied, true);
    } finally {
      await second.close({ keepDir: true });
    }
  });
});
