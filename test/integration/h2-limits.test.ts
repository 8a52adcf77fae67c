import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { connectRaw, errorCode, FRAME } from '../helpers/h2-raw.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const REFUSED_STREAM = 7;
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
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
        http2: { maxConcurrentStreams: 100, resetLimit: 50, resetWindow: '10s' },
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
    }
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
