/**
 * Compressions hold the whole stored body (and what it becomes) in memory while they run, so
 * they are bounded in bytes as well as in number: bodies of cache.maxObjectSize at most are held
 * at once. Without it, compression.queue (64) large objects in a coding — a cache-busting query
 * on a large export was enough — held 64 bodies of up to 256 MiB each.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync } from 'node:zlib';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** 720 KB of JSON lines that do not repeat (so brotli at quality 11 takes a while over them). */
const EXPORT = Buffer.from(
  Array.from(
    { length: 9000 },
    (_, i) => `{"row":${i},"value":${(i * 7919) % 104729},"hash":"${((i * 2654435761) >>> 0).toString(36)}"}`,
  )
    .join('\n')
    .padEnd(720 * 1024, ' '),
);
const PATH = `/reports/2026/12/${'quarterly-export-'.repeat(4)}rows.json?campaign=${'c'.repeat(20)}`;

describe('compression: the bytes held by compressions', () => {
  let origin: TestOrigin;
  let node: TestNode;

  before(async () => {
    const answer = respond(
      200,
      {
        'cache-control': 'max-age=60',
        'content-type': 'application/json',
        'content-length': String(EXPORT.length),
      },
      EXPORT,
    );
    origin = await startOrigin({ [`${PATH}&part=a`]: answer, [`${PATH}&part=b`]: answer });
    node = await startNode({
      origin: origin.url,
      cache: { maxObjectSize: '1MiB' },
      config: { compression: { levels: { br: 11 } } },
    });
  });

  after(async () => {
    await node.close();
    await origin.close();
  });

  it('serves identity to a request whose compression would hold more than maxObjectSize beside another', async () => {
    for (const part of ['a', 'b']) {
      const fill = await node.get(`${PATH}&part=${part}`);
      assert.equal(fill.status, 200);
      assert.match(String(fill.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
    }
    const br = { headers: { 'accept-encoding': 'br' } };
    const [a, b] = await Promise.all([node.get(`${PATH}&part=a`, br), node.get(`${PATH}&part=b`, br)]);
    const codings = [a, b].map((answer) => answer.headers['content-encoding'] ?? 'identity').sort();
    assert.deepEqual(codings, ['br', 'identity']);
    for (const answer of [a, b]) {
      assert.equal(answer.status, 200);
      const body =
        answer.headers['content-encoding'] === 'br' ? brotliDecompressSync(answer.body) : answer.body;
      assert.ok(body.equals(EXPORT));
      assert.match(String(answer.headers['cache-status']), /; hit/);
    }
    // Once the first is done, the other is made too.
    const refused = a.headers['content-encoding'] === 'br' ? 'b' : 'a';
    const later = await node.get(`${PATH}&part=${refused}`, br);
    assert.equal(later.headers['content-encoding'], 'br');
    assert.ok(brotliDecompressSync(later.body).equals(EXPORT));
    assert.equal(origin.count(), 2);
  });
});
