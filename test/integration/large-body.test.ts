import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** Paths of real length (over 100 characters) and a short one. */
const LONG = `/downloads/2026/12/installers/${'platform-release-candidate-'.repeat(4)}build.bin`;
const SHORT = '/big.bin';
const CHUNK = 16 * 1024;
/** 40 chunks and a partial one: many chunk buffers sealed, committed in batches and reused. */
const SIZE = 40 * CHUNK + 1234;
/** Larger than what loopback socket buffers hold: a stalled client leaves writes queued in the node. */
const BIG = 8 * 1024 * 1024 + 777;
const STALLED = `/archive/${'monthly-backup-volume-'.repeat(5)}part-1.tar`;
const OTHER = `/archive/${'monthly-backup-volume-'.repeat(5)}part-2.tar`;

/** Bytes that differ at every position and per object, so a chunk in the wrong place shows. */
function bodyFor(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size + 4);
  const start = createHash('sha256').update(seed).digest().readUInt32LE(0);
  for (let offset = 0, n = 0; offset < size; offset += 4, n++) {
    out.writeUInt32LE((Math.imul(n, 2654435761) + start) >>> 0, offset);
  }
  return out.subarray(0, size);
}

/**
 * A client that reads `size` bytes slowly: it pauses for `pauseMs` after every 64 KiB it took,
 * so the node's socket writes wait behind a full receive buffer while the fill goes on.
 */
function slowGet(url: string, pauseMs: number): Promise<{ status: number; cache: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      let since = 0;
      res.on('data', (data: Buffer) => {
        parts.push(data);
        since += data.length;
        if (since >= 64 * 1024) {
          since = 0;
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        }
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          cache: String(res.headers['cache-status'] ?? ''),
          body: Buffer.concat(parts),
        }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * A client that takes the first bytes, then nothing until `stalled` resolves, then the rest:
 * meanwhile the node's writes to it wait in its send buffer.
 */
function stallingGet(
  url: string,
  stalled: Promise<unknown>,
): Promise<{ status: number; cache: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.once('data', () => {
        res.pause();
        void stalled.then(() => res.resume());
      });
      res.on('data', (data: Buffer) => parts.push(data));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          cache: String(res.headers['cache-status'] ?? ''),
          body: Buffer.concat(parts),
        }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('bodies of many chunks', () => {
  let origin: TestOrigin;
  let node: TestNode;
  const bodies = new Map<string, Buffer>();

  before(async () => {
    origin = await startOrigin();
    for (const path of [LONG, SHORT, `${SHORT}?v=2`, `${SHORT}?v=3`, STALLED, OTHER]) {
      const body = bodyFor(path, path === STALLED || path === OTHER ? BIG : SIZE);
      bodies.set(path, body);
      // Written in 5,000-byte pieces with a pause each 20: the fill sees many small reads.
      origin.route(path, async (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
          'cache-control': 'public, max-age=3600',
        });
        for (let offset = 0, n = 0; offset < body.length; offset += 5000, n++) {
          res.write(body.subarray(offset, offset + 5000));
          if (n % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
        }
        res.end();
      });
    }
    // memoryObjectSize below the body: hits stream from LMDB chunks, not from the memory tier.
    node = await startNode({ origin: origin.url, cache: { chunkSize: CHUNK, memoryObjectSize: 4096 } });
  });

  after(async () => {
    await node.close();
    await origin.close();
  });

  it('streams a body of 41 chunks to a slow and a fast client at once, stores it whole, and serves it as a hit', async () => {
    const expected = bodies.get(LONG)!;
    const [slow, fast] = await Promise.all([
      slowGet(`${node.url}${LONG}`, 5),
      slowGet(`${node.url}${LONG}`, 0),
    ]);
    await node.node.idle();
    for (const answer of [slow, fast]) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body.length, expected.length);
      assert.ok(answer.body.equals(expected), 'body bytes as the origin sent them');
    }
    assert.equal(origin.count(LONG), 1);
    const hit = await slowGet(`${node.url}${LONG}`, 2);
    assert.equal(hit.status, 200);
    assert.match(hit.cache, /hit/);
    assert.ok(hit.body.equals(expected), 'the stored body is the origin body');
    assert.equal(origin.count(LONG), 1);
  });

  it('keeps each object its own bytes when chunk buffers are reused from fill to fill', async () => {
    const paths = [SHORT, `${SHORT}?v=2`, `${SHORT}?v=3`];
    // Two fills at a time, each with a slow client, so buffers go back and are taken in between.
    const first = await Promise.all(paths.slice(0, 2).map((path) => slowGet(`${node.url}${path}`, 3)));
    const third = await slowGet(`${node.url}${paths[2]}`, 1);
    await node.node.idle();
    for (const [i, answer] of [...first, third].entries()) {
      assert.equal(answer.status, 200);
      assert.match(answer.cache, /fwd=miss/);
      assert.ok(answer.body.equals(bodies.get(paths[i]!)!), `miss body of ${paths[i]}`);
    }
    for (const path of paths) {
      const hit = await slowGet(`${node.url}${path}`, 0);
      assert.match(hit.cache, /hit/);
      assert.ok(hit.body.equals(bodies.get(path)!), `hit body of ${path}`);
      assert.equal(origin.count(path), 1);
    }
  });

  it('regression: a client stalled while the fill goes on still gets the bytes it was sent (chunk buffers are reused only after their writes)', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const answer = stallingGet(`${node.url}${STALLED}`, stalled);
    // The fill ends and is stored while the client takes nothing; another fill reuses buffers.
    for (let i = 0; i < 200 && origin.count(STALLED) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await node.node.idle();
    const other = await slowGet(`${node.url}${OTHER}`, 0);
    assert.ok(other.body.equals(bodies.get(OTHER)!), 'the other body');
    release();
    const got = await answer;
    assert.equal(got.status, 200);
    assert.equal(got.body.length, BIG);
    assert.ok(got.body.equals(bodies.get(STALLED)!), 'the stalled client got the origin bytes');
    const hit = await slowGet(`${node.url}${STALLED}`, 0);
    assert.match(hit.cache, /hit/);
    assert.ok(hit.body.equals(bodies.get(STALLED)!), 'the stored body');
    assert.equal(origin.count(STALLED), 1);
  });

  it('regression: a hit stalled by its client while other hits read chunks still gets its own bytes', async () => {
    // Both stored by the test above.
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const answer = stallingGet(`${node.url}${STALLED}`, stalled);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 2; i++) {
      const other = await slowGet(`${node.url}${OTHER}`, 0);
      assert.match(other.cache, /hit/);
      assert.ok(other.body.equals(bodies.get(OTHER)!), 'the other hit');
    }
    release();
    const got = await answer;
    assert.match(got.cache, /hit/);
    assert.ok(got.body.equals(bodies.get(STALLED)!), 'the stalled hit got the stored bytes');
    assert.equal(origin.count(STALLED), 1);
    assert.equal(origin.count(OTHER), 1);
  });
});
