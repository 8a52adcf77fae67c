/**
 * The connection caps and the requests-per-connection limit hold on TLS listeners as on the
 * plain one: over HTTPS/1.1 and over HTTP/2 (where the last allowed stream brings GOAWAY).
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const LONG = `/catalogue/${'spring-collection-'.repeat(5)}items/page.json?lang=en-GB&currency=EUR&v=${'0'.repeat(20)}`;

/** A TLS connection from `localAddress`, resolved once the handshake is done; rejected if the node drops it first. */
function handshake(port: number, ca: string, localAddress: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      socket: netConnect({ host: '127.0.0.1', port, localAddress }),
      ca,
      servername: 'edge.test',
      ALPNProtocols: ['http/1.1'],
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the handshake')));
  });
}

describe('TLS listener: connection caps and requests per connection', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;
  const open: TLSSocket[] = [];

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    origin = await startOrigin({ [LONG]: respond(200, { 'cache-control': 'max-age=60' }, 'catalogue page') });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
        proxy: { maxConnections: 6, maxConnectionsPerClient: 2, maxRequestsPerConnection: 3 },
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    for (const socket of open) socket.destroy();
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('closes a third TLS connection from one address before the handshake; another address is served', async () => {
    open.push(
      await handshake(port, fixtures.ca, '127.0.0.2'),
      await handshake(port, fixtures.ca, '127.0.0.2'),
    );
    await assert.rejects(handshake(port, fixtures.ca, '127.0.0.2'));
    const served = await handshake(port, fixtures.ca, '127.0.0.3');
    served.destroy();
    const refused = await node.node.metrics.registry.getSingleMetricAsString(
      'strata_connections_refused_total',
    );
    assert.match(refused, /cap="per-client"} 1/);
  });

  it('answers the last allowed HTTPS/1.1 request with Connection: close and dispatches nothing after it', async () => {
    const before = origin.requests.length;
    const request = `GET ${LONG} HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: caps-test/1.0\r\n\r\n`;
    const { text, closed } = await rawExchange(port, request.repeat(5), 3000, {
      ca: fixtures.ca,
      servername: 'edge.test',
    });
    const answers = text.split('HTTP/1.1 ').slice(1);
    assert.equal(answers.length, 3, text);
    for (const answer of answers) assert.match(answer, /^200 /);
    assert.doesNotMatch(answers[1]!, /connection: close/i);
    assert.match(answers[2]!, /connection: close/i);
    assert.ok(closed, 'the node ended the connection');
    assert.ok(origin.requests.length - before <= 1, 'one fill at most, the rest hits');
  });

  it('sends GOAWAY on an HTTP/2 connection after its last allowed stream, answering every stream it accepted', async () => {
    const session = h2connect(`https://127.0.0.1:${port}`, { ca: fixtures.ca, servername: 'edge.test' });
    try {
      const goaway = new Promise<number>((resolve) =>
        session.once('goaway', (_code: number, lastStreamId: number) => resolve(lastStreamId)),
      );
      const ask = () =>
        new Promise<number>((resolve) => {
          const stream = session.request({ ':path': LONG, ':authority': 'edge.test' });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', () => resolve(0));
          stream.on('close', () => resolve(0));
          stream.resume();
          stream.end();
        });
      const first = await ask();
      const second = await ask();
      const third = await ask();
      assert.deepEqual([first, second, third], [200, 200, 200]);
      const timeout = new Promise<string>((resolve) =>
        setTimeout(() => resolve('no GOAWAY within 5 s'), 5000).unref(),
      );
      assert.equal(
        await Promise.race([goaway, timeout]),
        5,
        'GOAWAY names the third stream (id 5) as the last',
      );
    } finally {
      session.destroy();
    }
  });
});
