/**
 * What a worker that exited left in LMDB (fills it never finished, bodies its timers were to
 * remove) is swept once their grace period is over: only that worker's bodies, never one a
 * record still serves, never another process's fill. Before, it stayed until the node restarted,
 * and eviction did not count it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sealRecord } from '../../src/cache/integrity.ts';
import type { EntryRecord } from '../../src/cache/record.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { withRawStore } from '../helpers/raw-lmdb.ts';

const LONG = `/catalogue/spring-2026/${'collection-'.repeat(6)}hero/item-${'4'.repeat(24)}.json`;
const BODY = Buffer.alloc(3 * 1024, 7);
/** One site name for both starts (each listens on a port of its own). */
const HOST = { headers: { host: 'shop.example.com' } };
/** Prefixes of two other processes: one that exited, one still running. */
const GONE = 'GoneWorker01';
const LIVE = 'LiveWorker02';

describe('the bodies of an exited worker', () => {
  let origin: TestOrigin;
  let node: TestNode | undefined;
  let dir: string;

  before(async () => {
    origin = await startOrigin({
      [LONG]: respond(200, { 'cache-control': 'max-age=600', 'content-type': 'application/json' }, BODY),
    });
    const first = await startNode({ origin: origin.url, bodyGraceMs: 50 });
    dir = first.dir;
    assert.match(String((await first.get(LONG, HOST)).headers['cache-status']), /stored$/);
    await first.close({ keepDir: true });
    // As another process would have left them: written after this start's own sweep would look
    // (their creation time ahead), so only a sweep of their maker removes them.
    const later = (Date.now() + 3_600_000).toString(36);
    await withRawStore(`${dir}/cache`, (db) => {
      for (let i = 0; i < 3; i++) {
        db.chunks.putSync([`${later}.${GONE}a`, i], Buffer.alloc(256 * 1024, i)); // a fill cut short
        db.chunks.putSync([`${later}.${LIVE}b`, i], Buffer.alloc(1024, i)); // a fill still running
      }
      // The stored entry's body, made by the exited worker: a record still serves it.
      for (const { key, value } of db.entries.getRange()) {
        const record = value as { bodyId?: string; chunks?: number };
        if (typeof record.bodyId !== 'string' || record.chunks === undefined) continue;
        const moved = `${later}.${GONE}c`;
        for (let i = 0; i < record.chunks; i++) {
          db.chunks.putSync([moved, i], db.chunks.get([record.bodyId, i])!);
          db.chunks.removeSync([record.bodyId, i]);
        }
        db.entries.putSync(key, sealRecord({ ...(record as EntryRecord), bodyId: moved }));
      }
    });
    node = await startNode({ origin: origin.url, dir, bodyGraceMs: 50 });
  });
  after(async () => {
    await node?.close();
    await origin.close();
  });

  const bodies = () => {
    const ids = new Map<string, number>();
    for (const [id] of node!.node.store.chunkKeys()) ids.set(id, (ids.get(id) ?? 0) + 1);
    return [...ids].map(([id, count]) => `${id.slice(id.indexOf('.') + 1)}:${count}`).sort();
  };

  it('removes the chunks no record references once the grace period is over, and keeps the rest', async () => {
    assert.deepEqual(bodies(), [`${GONE}a:3`, `${GONE}c:1`, `${LIVE}b:3`]);
    const swept = await node!.node.sweepBodiesOf(GONE);
    assert.equal(swept, 3);
    assert.deepEqual(bodies(), [`${GONE}c:1`, `${LIVE}b:3`]);
    // The entry whose body the exited worker made is still a hit, with its bytes.
    const hit = await node!.get(LONG, HOST);
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.ok(hit.body.equals(BODY));
    assert.equal(origin.count(LONG), 1);
  });
});
