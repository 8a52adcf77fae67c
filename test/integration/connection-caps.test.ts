import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

/** An idle raw connection from `localAddress`, resolved once connected. */
function open(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** One request on a fresh connection; the raw answer, or '' when the node closed it unanswered. */
function ask(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('connect', () =>
      socket.write('GET /p HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n'),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('connection caps', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;
  const idle: Socket[] = [];

  before(async () => {
    origin = await startOrigin({ '/p': respond(200, { 'cache-control': 'max-age=60' }, 'p') });
    edge = await startNode({
      origin: origin.url,
      config: { proxy: { maxConnections: 5, maxConnectionsPerClient: 2 } },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    for (const socket of idle) socket.destroy();
    await edge.close();
    await origin.close();
  });

  it('closes a third connection from one address unanswered while another address is served', async () => {
    idle.push(await open(port, '127.0.0.2'), await open(port, '127.0.0.2'));
    assert.equal(await ask(port, '127.0.0.2'), '', 'over the per-client cap');
    assert.match(await ask(port, '127.0.0.3'), /^HTTP\/1\.1 200 /);
  });

  it('closes connections over the listener-wide cap, and accepts again once one closes', async () => {
    idle.push(await open(port, '127.0.0.4'), await open(port, '127.0.0.4'), await open(port, '127.0.0.5'));
    assert.equal(await ask(port, '127.0.0.6'), '', '5 open: over the cap');
    idle.pop()!.destroy();
    let answer = '';
    for (let i = 0; i < 20 && answer === ''; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      answer = await ask(port, '127.0.0.6');
    }
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const counted = await edge.node.metrics.registry.getSingleMetricAsString(
      'strata_connections_refused_total',
    );
    assert.match(counted, /cap="per-client"} 1/);
    assert.match(counted, /cap="max"} 1/);
  });
});

describe('requests per connection', () => {
  it('answers the last allowed request with Connection: close and ends the connection', async () => {
    const origin = await startOrigin({ '/p': respond(200, { 'cache-control': 'max-age=60' }, 'p') });
    const edge = await startNode({ origin: origin.url, config: { proxy: { maxRequestsPerConnection: 2 } } });
    try {
      const request = 'GET /p HTTP/1.1\r\nHost: a.example\r\n\r\n';
      const { text, closed } = await rawExchange(Number(new URL(edge.url).port), request.repeat(3));
      const answers = text.split('HTTP/1.1 ').slice(1);
      assert.equal(answers.length, 2, text);
      assert.doesNotMatch(answers[0]!, /connection: close/i);
      assert.match(answers[1]!, /connection: close/i);
      assert.ok(closed);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
