import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openCacheDirectory } from '../../src/admin/offline.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

describe('a hard purge on a stopped node’s cache directory', () => {
  let origin: TestOrigin;

  before(async () => {
    origin = await startOrigin({
      '/a': respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(40 * 1024, 1)),
      '/b': respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(40 * 1024, 2)),
    });
  });
  after(() => origin.close());

  it('removes the purged bodies’ chunks at once, leaving the others', async () => {
    const edge = await startNode({ origin: origin.url, cache: { chunkSize: 16 * 1024 } });
    const host = { host: 'www.example.test' };
    await edge.get('/a', { headers: host });
    await edge.get('/b', { headers: host });
    await edge.close({ keepDir: true });
    const dir = join(edge.dir, 'cache');
    try {
      assert.equal(await countChunks(dir), 6, 'two bodies of three chunks each');
      const cache = openCacheDirectory({ dir });
      const result = await cache.purge({
        urls: ['http://www.example.test/a'],
        prefixes: [],
        tags: [],
        all: false,
        soft: false,
      });
      await cache.close();
      assert.equal(result.purged, 1);
      assert.equal(await countChunks(dir), 3, 'the purged body is gone, the other stays');
    } finally {
      rmSync(edge.dir, { recursive: true, force: true });
    }
  });
});

async function countChunks(dir: string): Promise<number> {
  const store = new CacheStore({
    dir,
    maxSize: 1 << 30,
    chunkSize: 16 * 1024,
    memorySize: 0,
    memoryObjectSize: 0,
    log: pino({ level: 'silent' }),
    now: Date.now,
  });
  let n = 0;
  for (const _ of store.chunkKeys()) n++;
  await store.close();
  return n;
}
