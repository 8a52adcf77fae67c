/**
 * A client that opens a TLS connection and never finishes the handshake (sends nothing, or a
 * ClientHello cut short) is dropped once the handshake timeout passes, quietly: no HTTP was
 * spoken, so nothing is answered and no request is logged. The handshake has the time a plain
 * listener gives a request head, min(proxy.requestTimeout, 20 s), on both kinds of TLS listener.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** A ClientHello record header that announces 512 bytes, and one byte of them. */
const PARTIAL_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);

/** Milliseconds until the node closes a connection that sent `first` (or nothing); -1 if still open after 8 s. */
function closedAfter(port: number, first: Buffer | undefined): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = netConnect(port, '127.0.0.1', () => {
      if (first) socket.write(first);
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(-1);
    }, 8000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
}

describe('TLS handshakes that never finish', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  const nodes: TestNode[] = [];
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    fixtures = createFixtures();
    origin = await startOrigin({});
    const leaf = fixtures.leaf('edge', ['edge.test']);
    const sink = sinkInto(lines);
    for (const http2 of [true, false])
      nodes.push(
        await startNode({
          origin: origin.url,
          logger: pino({ level: 'info' }, sink),
          config: {
            logging: { level: 'info', access: true },
            listeners: [{ listen: '127.0.0.1:0', http2, tls: { cert: leaf.cert, key: leaf.key } }],
            proxy: { requestTimeout: 1000 },
          },
        }),
      );
  });

  after(async () => {
    for (const node of nodes) await node.close();
    await origin.close();
    fixtures.remove();
  });

  for (const [index, kind] of [
    [0, 'HTTP/2 and HTTP/1.1'],
    [1, 'HTTP/1.1 only'],
  ] as const) {
    it(`drops a silent client and a ClientHello cut short after the timeout, unlogged (${kind})`, async () => {
      const port = Number(nodes[index]!.node.addresses[0]!.split(':').pop());
      const before = lines.length;
      const [silent, partial] = await Promise.all([
        closedAfter(port, undefined),
        closedAfter(port, PARTIAL_HELLO),
      ]);
      for (const ms of [silent, partial]) assert.ok(ms >= 900 && ms < 3000, `closed after ${ms} ms`);
      assert.deepEqual(
        lines.slice(before).map((line) => line.msg),
        [],
        'no request logged for a handshake',
      );
      assert.equal(origin.count(), 0);
    });
  }
});
