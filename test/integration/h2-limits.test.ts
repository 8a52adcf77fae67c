import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

  it('holds memory flat while clients keep opening more streams than allowed', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heapAfterGc = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const pad = 'p'.repeat(60);
    const closed: WeakRef<object>[] = [];
    // A round: a connection fills its 100 streams (held by the origin), then opens 2,000 more,
    // 500 at a time; each is refused (REFUSED_STREAM) until node:http2 ends the connection for
    // rejecting too many. The next round is a new connection doing the same.
    const round = async (): Promise<number> => {
      // The test origin keeps every request it saw: forgotten each round, so the heap measures the node.
      origin.requests.length = 0;
      const client = await connectRaw(port, fixtures.ca, 'edge.test');
      const counted = origin.count();
      let id = 1;
      let refused = 0;
      try {
        for (let i = 0; i < 100; i++, id += 2) client.get(id, `/slow?stream=${id}&pad=${pad}`, 'edge.test');
        await until(() => origin.count() >= counted + 100);
        for (const session of node.node.secureListeners[0]!.sessions) closed.push(new WeakRef(session));
        for (let batch = 0; batch < 4 && !client.socket.destroyed; batch++) {
          for (let i = 0; i < 500; i++, id += 2) client.get(id, `/slow?stream=${id}&pad=${pad}`, 'edge.test');
          const want = refused + 500;
          await until(
            () =>
              client.socket.destroyed ||
              client.frames.filter((f) => f.type === FRAME.RST_STREAM).length >= want,
          );
          refused = client.frames.filter((f) => f.type === FRAME.RST_STREAM).length;
        }
        assert.ok(client.frames.every((f) => f.type !== FRAME.RST_STREAM || errorCode(f) === REFUSED_STREAM));
        assert.ok(refused >= 100, `${refused} streams refused`);
        return origin.count() - counted;
      } finally {
        client.destroy();
        for (const res of held.splice(0)) res.destroy();
        await until(() => node.node.secureListeners[0]!.sessions.size === 0);
      }
    };
    for (let n = 0; n < 3; n++) await round();
    const start = heapAfterGc();
    for (let n = 0; n < 15; n++) assert.equal(await round(), 100, 'refused streams never reach the origin');
    const growth = heapAfterGc() - start;
    assert.ok(growth < 4 * 1024 * 1024, `heap grew ${(growth / 1024 ** 2).toFixed(1)} MiB over 15 rounds`);
    // Every closed connection's session is freed (none held by a timer or a table).
    await new Promise((resolve) => setImmediate(resolve));
    heapAfterGc();
    const retained = closed.filter((ref) => ref.deref() !== undefined).length;
    assert.equal(retained, 0, `${retained} of ${closed.length} closed sessions still in memory`);
  });

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
