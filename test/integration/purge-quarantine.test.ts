/**
 * A logged purge that cannot be applied does not brick the node: it is quarantined (listed in
 * /stats), what it names is marked stale, and the node starts.
 */
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

const PATH = `/quarantine/${'p'.repeat(120)}`;

function openStore(dir: string): CacheStore {
  return new CacheStore({
    dir: join(dir, 'cache'),
    maxSize: 1024 ** 3,
    chunkSize: 256 * 1024,
    memorySize: 0,
    memoryObjectSize: 0,
    log: pino({ level: 'silent' }),
    now: Date.now,
  });
}

/** Appends purges to a stopped node's log as an older version or a damaged log could hold them. */
async function logUnappliable(dir: string, commands: unknown[]): Promise<number[]> {
  const store = openStore(dir);
  const log = new PurgeLog(store);
  const sequences: number[] = [];
  for (const command of commands) {
    sequences.push(
      await store.write(() =>
        log.appendInTxn({ command: command as never, at: Date.now(), path: [], applied: false }),
      ),
    );
  }
  await store.close();
  return sequences;
}

describe('a purge that cannot be applied', () => {
  let origin: TestOrigin;
  let dir: string;

  before(async () => {
    origin = await startOrigin({
      [PATH]: respond(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'q-tag' }, 'quarantine body'),
    });
    dir = mkdtempSync(join(tmpdir(), 'strata-quarantine-'));
  });
  after(async () => {
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is quarantined at startup, listed in /stats, its entries marked stale, and the node starts', async () => {
    const first = await startAdminNode({ origin: origin.url, dir });
    await first.get(PATH);
    const hit = await first.get(PATH);
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(PATH), 1);
    const base = first.base;
    await first.close({ keepDir: true });

    // What an older version or a damaged log can hold: a list that is not a list (applying it
    // throws; its readable tag is what it was meant to purge), and no command at all.
    const [walkFails, unreadable] = await logUnappliable(dir, [
      { urls: 42, prefixes: [], tags: ['q-tag'], all: false, soft: false },
      null,
    ]);

    const second = await startAdminNode({ origin: origin.url, dir });
    try {
      const stats = await second.call('GET', '/stats');
      assert.equal(stats.status, 200);
      const quarantined = (JSON.parse(stats.text) as { purge: { quarantined: Array<{ sequence: number }> } })
        .purge.quarantined;
      assert.deepEqual(
        quarantined.map((q) => q.sequence),
        [walkFails, unreadable],
      );
      // The first node's Host (its port): the key the entry was stored under.
      const after = await second.get(PATH, { headers: { host: new URL(base).host } });
      assert.equal(after.status, 200);
      assert.equal(after.text, 'quarantine body');
      assert.doesNotMatch(
        String(after.headers['cache-status']),
        /^strata; hit/,
        'marked stale, not served fresh',
      );
      assert.equal(origin.count(PATH), 2);
      const purged = await second.purge({ urls: [`${base}${PATH}`] });
      assert.equal(purged.purged, 1, 'purges go on after the quarantine');
    } finally {
      await second.close({ keepDir: true });
    }

    const third = await startAdminNode({ origin: origin.url, dir });
    try {
      const stats = JSON.parse((await third.call('GET', '/stats')).text) as {
        purge: { quarantined: unknown[] };
      };
      assert.equal(stats.purge.quarantined.length, 2, 'a restart does not try them again');
    } finally {
      await third.close({ keepDir: true });
    }
  });

  it('marks stale what the readable hosts of a quarantined purge name', async () => {
    const hostDir = mkdtempSync(join(tmpdir(), 'strata-quarantine-hosts-'));
    try {
      const first = await startAdminNode({ origin: origin.url, dir: hostDir });
      await first.get(PATH);
      const before = origin.count(PATH);
      const host = new URL(first.base).host;
      await first.close({ keepDir: true });
      const [sequence] = await logUnappliable(hostDir, [
        { urls: 42, prefixes: [], tags: [], hosts: [host], all: false, soft: false },
      ]);

      const second = await startAdminNode({ origin: origin.url, dir: hostDir });
      try {
        const stats = JSON.parse((await second.call('GET', '/stats')).text) as {
          purge: { quarantined: Array<{ sequence: number; purge: string }> };
        };
        assert.deepEqual(
          stats.purge.quarantined.map((q) => [q.sequence, q.purge]),
          [[sequence, 'hard purge of 1 host']],
        );
        // The first node's Host (its port): the key the entry was stored under.
        const after = await second.get(PATH, { headers: { host } });
        assert.equal(after.text, 'quarantine body');
        assert.match(String(after.headers['cache-status']), /fwd=stale/, 'marked stale');
        assert.equal(origin.count(PATH), before + 1);
      } finally {
        await second.close({ keepDir: true });
      }
    } finally {
      rmSync(hostDir, { recursive: true, force: true });
    }
  });
});
