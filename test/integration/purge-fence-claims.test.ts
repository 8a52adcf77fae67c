/**
 * What a child names to its parent (purge/fence.ts): the purges applied within the window that
 * may cover the requested key, one sequence per origin — read from a real store's purge log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { storageKey } from '../../src/cache/key.ts';
import { CacheStore } from '../../src/cache/store.ts';
import type { PurgeCommand } from '../../src/purge/command.ts';
import { MAX_CLAIMS, PurgeFence } from '../../src/purge/fence.ts';
import { PurgeService } from '../../src/purge/service.ts';
import { createClock } from '../helpers/clock.ts';

const HOST = 'http://shop.example.com';
const LONG = `/catalogue/${'deep-path-'.repeat(12)}item.json?colour=navy&size=m`;

function command(fields: Partial<PurgeCommand>): PurgeCommand {
  return { urls: [], prefixes: [], tags: [], all: false, soft: false, ...fields };
}

describe('purge fence claims', () => {
  const clock = createClock();
  const dir = mkdtempSync(join(tmpdir(), 'strata-fence-'));
  let store: CacheStore;
  let service: PurgeService;
  let fence: PurgeFence;
  const key = (path: string) => storageKey(`${HOST}${path}`);

  before(() => {
    const log = pino({ level: 'silent' });
    store = new CacheStore({
      dir: join(dir, 'cache'),
      maxSize: 1024 ** 3,
      chunkSize: 256 * 1024,
      memorySize: 0,
      memoryObjectSize: 0,
      log,
      now: clock.now,
    });
    service = new PurgeService({ store, log, sortQuery: () => false, batchSize: 100, now: clock.now });
    fence = new PurgeFence({
      store,
      log: service.log,
      nodeId: service.nodeId,
      sortQuery: () => false,
      windowMs: 30_000,
      now: clock.now,
    });
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a URL purge for its key only (both schemes), with this node as origin', async () => {
    const sent = await service.purge(command({ urls: [`https://shop.example.com${LONG}`] }));
    const claim = [{ origin: service.nodeId, sequence: sent.sequence }];
    assert.deepEqual(fence.claimsFor(key(LONG)), claim);
    assert.deepEqual(fence.claimsFor(storageKey(`https://shop.example.com${LONG}`)), claim);
    assert.deepEqual(fence.claimsFor(key('/other')), []);
    // And this node has reached its own purge: nothing unmet.
    assert.deepEqual(fence.unmet(claim), []);
    assert.deepEqual(fence.unmet([{ origin: service.nodeId, sequence: sent.sequence + 1 }]), [
      { origin: service.nodeId, sequence: sent.sequence + 1 },
    ]);
  });

  it('names a merged bus backlog by every node it stands for, and applies it once per origin', async () => {
    const sender = 'bus:STRATA_PURGES@2026-12-02T18:00:00.000Z';
    const bus = { node: sender, sequence: 41, path: ['node-x'] };
    const origins = { origin: { node: 'node-x', sequence: 12 }, covers: [{ node: 'node-y', sequence: 30 }] };
    const path = `/bus${LONG}`;
    const first = await service.purge(command({ urls: [`${HOST}${path}`] }), { ...bus, ...origins });
    assert.ok(first.sequence > 0);
    assert.deepEqual(
      fence.claimsFor(key(path)).sort((a, b) => a.origin.localeCompare(b.origin)),
      [
        { origin: 'node-x', sequence: 12 },
        { origin: 'node-y', sequence: 30 },
      ],
    );
    assert.equal(service.appliedFrom('node-x'), 12);
    assert.equal(service.appliedFrom('node-y'), 30);
    assert.deepEqual(fence.unmet([{ origin: 'node-y', sequence: 30 }]), []);
    // The same purges again by a peer (node-y's, forwarded): already applied, not logged again.
    const again = await service.purge(command({ urls: [`${HOST}${path}`] }), {
      node: 'peer-b',
      sequence: 3,
      path: ['node-y', 'peer-b'],
      origin: { node: 'node-y', sequence: 30 },
    });
    assert.equal(again.sequence, first.sequence);
  });

  it('names a prefix purge for the keys under it, a forwarded one by its origin', async () => {
    await service.purge(command({ prefixes: [`${HOST}/img/`] }), {
      node: 'peer-a',
      sequence: 7,
      path: ['peer-a'],
      origin: { node: 'stream:purges', sequence: 412 },
    });
    assert.deepEqual(fence.claimsFor(key('/img/a.png')), [{ origin: 'stream:purges', sequence: 412 }]);
    assert.deepEqual(fence.claimsFor(key('/imgx')), []);
    assert.equal(service.appliedFrom('stream:purges'), 412);
  });

  it('names a tag purge for every key, the highest sequence per origin', async () => {
    const first = await service.purge(command({ tags: ['shoes'] }));
    const second = await service.purge(command({ urls: [`${HOST}/boots`] }));
    assert.ok(second.sequence > first.sequence);
    assert.deepEqual(fence.claimsFor(key('/anything')), [
      { origin: service.nodeId, sequence: first.sequence },
    ]);
    assert.deepEqual(fence.claimsFor(key('/boots')), [{ origin: service.nodeId, sequence: second.sequence }]);
  });

  it('names at most MAX_CLAIMS origins, the most recently purged', async () => {
    for (let i = 0; i < MAX_CLAIMS + 4; i++) {
      clock.advance(0.01);
      await service.purge(command({ urls: [`${HOST}/crowded`] }), {
        node: `peer-${i}`,
        sequence: 1,
        path: [`peer-${i}`],
      });
    }
    const claims = fence.claimsFor(key('/crowded'));
    assert.equal(claims.length, MAX_CLAIMS);
    assert.ok(claims.some((c) => c.origin === `peer-${MAX_CLAIMS + 3}`));
    assert.ok(!claims.some((c) => c.origin === 'peer-0'));
  });

  it('forgets purges older than the window', () => {
    clock.advance(31);
    assert.deepEqual(fence.claimsFor(key('/anything')), []);
    assert.deepEqual(fence.claimsFor(key('/crowded')), []);
    assert.deepEqual(fence.claimsFor(key('/img/a.png')), []);
  });
});
