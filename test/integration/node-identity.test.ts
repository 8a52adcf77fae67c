import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin } from '../helpers/origin.ts';

const root = mkdtempSync(join(tmpdir(), 'strata-identity-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe("a cache directory's node id", () => {
  it('stays with its node across restarts, and is new for a node started on a copy of it', async () => {
    const origin = await startOrigin({ '/a': respond(200, { 'cache-control': 'max-age=60' }, 'a') });
    const start = (dir: string, id: string) =>
      startNode({ origin: origin.url, dir, config: { tiers: { id } } });
    const shop = { headers: { host: 'shop.example' } };
    let node: Awaited<ReturnType<typeof start>> | undefined;
    try {
      const first = join(root, 'edge-3');
      node = await start(first, 'edge.3');
      const id = node.node.purge.nodeId;
      await node.get('/a', shop);
      await node.close({ keepDir: true });
      node = await start(first, 'edge.3');
      assert.equal(node.node.purge.nodeId, id, 'the same node keeps its id');
      await node.close({ keepDir: true });
      // An operator makes a new node from a copy of the first one's cache (compact --to, cp -a).
      const copy = join(root, 'edge-6');
      cpSync(first, copy, { recursive: true });
      node = await start(copy, 'edge.6');
      const other = node.node.purge.nodeId;
      assert.notEqual(other, id, "the copy gets an id of its own: purges of one are not the other's");
      assert.match(
        String((await node.get('/a', shop)).headers['cache-status']),
        /^strata; hit/,
        'its entries kept',
      );
      await node.close({ keepDir: true });
      node = await start(copy, 'edge.6');
      assert.equal(node.node.purge.nodeId, other);
      await node.close({ keepDir: true });
      node = undefined;
    } finally {
      await node?.close({ keepDir: true });
      await origin.close();
    }
  });
});
