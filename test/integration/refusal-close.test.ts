/**
 * A request the HTTP/1.1 parser refuses is answered (400, 431, 408, …) with Connection: close
 * and the connection ended. A client that never closes its side (half-open: it read the FIN
 * and says nothing) must not keep the connection: after proxy.keepAliveTimeout the node closes
 * it, on a plain listener and on HTTP/1.1 over TLS alike. Seen through the per-client cap: the
 * held connection kept its client from connecting again.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const PATH = `/refused/${'r'.repeat(90)}?q=1`;
const BAD = `GET ${PATH} HTTP/1.1\r\nHost: edge.test\r\nBad Header: x\r\n\r\n`;
const GOOD = `GET ${PATH} HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n`;

/** Sends BAD on `socket` and resolves with the answer once the node has ended its side; the socket stays. */
function refused(socket: Socket, connectEvent: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('error', () => {});
    socket.once(connectEvent, () => socket.write(BAD));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

describe('a connection after a parser refusal, its client silent', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let plain: number;
  let secure: number;

  before(async () => {
    fixtures = createFixtures();
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'no-store' }, 'served') });
    const leaf = fixtures.leaf('edge', ['edge.test']);
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          { listen: '127.0.0.1:0' },
          { listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } },
        ],
        proxy: { keepAliveTimeout: 500, maxConnectionsPerClient: 1, requestTimeout: 2000 },
      },
    });
    const ports = node.node.addresses.map((address) => Number(address.split(':').pop()));
    plain = ports[0]!;
    secure = ports[1]!;
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  /** Tries a new connection every 100 ms for 4 s; the ms until one was served, or -1. */
  async function servedAgainAfter(tls?: { ca: string; servername: string }): Promise<number> {
    const started = performance.now();
    for (let i = 0; i < 40; i++) {
      const answer = await rawExchange(tls ? secure : plain, GOOD, 1000, tls).catch(() => ({ text: '' }));
      if (answer.text.startsWith('HTTP/1.1 200')) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return -1;
  }

  it('is closed after the keep-alive timeout on a plain listener', async () => {
    const held = netConnect({ port: plain, host: '127.0.0.1', allowHalfOpen: true });
    try {
      assert.match(await refused(held, 'connect'), /^HTTP\/1\.1 400 /);
      const ms = await servedAgainAfter();
      assert.ok(ms >= 0 && ms < 3000, `served again after ${ms} ms`);
      assert.equal(origin.count(PATH), 1);
    } finally {
      held.destroy();
    }
  });

  it('is closed after the keep-alive timeout on HTTP/1.1 over TLS', async () => {
    const tls = { ca: fixtures.ca, servername: 'edge.test' };
    const held = tlsConnect({ port: secure, host: '127.0.0.1', ...tls, ALPNProtocols: ['http/1.1'] });
    (held as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
    try {
      assert.match(await refused(held, 'secureConnect'), /^HTTP\/1\.1 400 /);
      const ms = await servedAgainAfter(tls);
      assert.ok(ms >= 0 && ms < 3000, `served again after ${ms} ms`);
      assert.equal(origin.count(PATH), 2);
    } finally {
      held.destroy();
    }
  });

  // The head timeout (requestTimeout, here 2 s) is checked by node:http every
  // connectionsCheckingInterval (30 s by default): a stalled head (slowloris) held its
  // connection up to 32 s, not the 2 s configured.
  for (const tls of [false, true]) {
    it(`answers a stalled request head 408 within the head timeout${tls ? ' over TLS' : ''}`, async () => {
      const before = origin.count(PATH);
      const stalled = `GET ${PATH} HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: slowloris/1.0\r\nX-Partial: `;
      let answer = { text: '', closed: true };
      let ms = 0;
      // The per-client cap (1) refuses a connection while the previous test's is still closing.
      for (let i = 0; i < 20 && answer.text === '' && answer.closed; i++) {
        const started = performance.now();
        answer = await rawExchange(
          tls ? secure : plain,
          stalled,
          8000,
          tls ? { ca: fixtures.ca, servername: 'edge.test' } : undefined,
        ).catch(() => ({ text: '', closed: true }));
        ms = performance.now() - started;
        if (answer.text === '') await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.match(answer.text, /^HTTP\/1\.1 408 /);
      assert.ok(answer.closed);
      assert.ok(ms >= 1900 && ms < 4000, `answered after ${Math.round(ms)} ms`);
      assert.equal(origin.count(PATH), before);
    });
  }
});
