import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { connectRaw, errorCode, FRAME } from '../helpers/h2-raw.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const REFUSED_STREAM = 7;
const BIG = Buffer.alloc(5 * 1024 * 1024, 'b');
const HOT = Buffer.alloc(1024 * 1024, 'h');
const ENHANCE_YOUR_CALM = 11;

/** Waits (bounded) until `done()` holds. */
async function until(done: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('HTTP/2 limits', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;
  const held: ServerResponse[] = [];

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    origin = await startOrigin({
      // Never answered while the test runs: every stream waiting on it stays open.
      '/slow': (_req, res) => {
        held.push(res);
      },
      '/hot': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(HOT.length) });
        res.end(HOT);
      },
      '/big': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(BIG.length) });
        res.end(BIG);
      },
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
        http2: { maxConcurrentStreams: 100, resetLimit: 50, resetWindow: '10s' },
        proxy: { sendTimeout: '300ms' },
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    for (const res of held) res.destroy();
    await origin.close();
    await node.close();
    fixtures.remove();
  });

  it('refuses the streams past maxConcurrentStreams with REFUSED_STREAM and keeps the connection', async () => {
    const client = await connectRaw(port, fixtures.ca, 'edge.test');
    try {
      for (let i = 0; i < 130; i++) client.get(1 + 2 * i, `/slow?n=${i}`, 'edge.test');
      await until(() => client.frames.filter((f) => f.type === FRAME.RST_STREAM).length >= 30);
      const refused = client.frames.filter((f) => f.type === FRAME.RST_STREAM);
      assert.equal(refused.length, 30);
      assert.ok(refused.every((f) => errorCode(f) === REFUSED_STREAM));
      assert.ok(refused.every((f) => f.stream > 2 * 100));
      assert.equal(client.frames.filter((f) => f.type === FRAME.GOAWAY).length, 0);
      await until(() => origin.count() >= 100);
      assert.equal(origin.count(), 100);
      assert.equal(node.node.secureListeners[0]!.sessions.size, 1);
    } finally {
      client.destroy();
      for (const res of held.splice(0)) res.destroy();
    }
  });

  for (const [path, kind] of [
    ['/big', 'streamed from LMDB'],
    ['/hot', 'written whole from memory'],
  ] as const) {
    it(`cuts short a hit ${kind} whose client takes nothing within the send timeout; the connection stays`, async () => {
      const session = h2connect(`https://127.0.0.1:${port}`, { ca: fixtures.ca, servername: 'edge.test' });
      try {
        // Filled first, so the stalled request is a hit.
        await new Promise<void>((resolve, reject) => {
          const s = session.request({ ':path': path, ':authority': 'edge.test' });
          s.on('error', reject);
          s.resume();
          s.on('end', resolve);
          s.end();
        });

        await node.node.idle();
        const stalled = session.request({ ':path': path, ':authority': 'edge.test' });
        stalled.pause();
        stalled.on('error', () => {});
        stalled.end();
        const code = await new Promise<number>((resolve) =>
          stalled.once('close', () => resolve(stalled.rstCode ?? -1)),
        );
        assert.equal(code, 2); // INTERNAL_ERROR: cut short, never a clean end
        assert.equal(session.destroyed, false);
      } finally {
        session.close();
      }
    });
  }

  it('closes a rapid-reset connection with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await connectRaw(port, fixtures.ca, 'edge.test');
    const before = origin.count();
    for (let i = 0; i < 500 && !client.socket.destroyed; i++) {
      const id = 1 + 2 * i;
      client.get(id, `/slow?reset=${i}`, 'edge.test');
      client.cancel(id);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([client.closed, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    const goaway = client.frames.find((f) => f.type === FRAME.GOAWAY);
    assert.ok(goaway, 'a GOAWAY frame');
    assert.equal(errorCode(goaway), ENHANCE_YOUR_CALM);
    assert.ok(client.socket.destroyed);
    // The connection was cut long before all 500 streams reached the origin.
    assert.ok(origin.count() - before < 500, `${origin.count() - before} origin requests`);
  });
});
