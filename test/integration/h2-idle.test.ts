/**
 * An HTTP/2 connection whose streams make no progress is idle, whatever its open streams: after
 * proxy.keepAliveTimeout + proxy.requestTimeout without a frame of progress it is told GOAWAY,
 * and one that still makes none for as long again is closed. A small answer the client never
 * takes (its flow-control window left at 0) held the connection open for ever: the send timeout
 * watches only large ones, and GOAWAY waits for the streams in flight.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const PATH = `/idle/${'i'.repeat(60)}/small-answer.html?campaign=${'c'.repeat(40)}`;
const BODY = 'a small answer the client never takes\n'.repeat(100);

describe('HTTP/2: a connection whose streams make no progress', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let url: string;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'max-age=60' }, BODY) });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
        proxy: { keepAliveTimeout: 500, requestTimeout: 1000 },
      },
    });
    url = `https://${node.node.addresses[0]}`;
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('is told GOAWAY once idle, then closed, though a stream waits on the client', async () => {
    const fill = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    await new Promise<void>((resolve, reject) => {
      const stream = fill.request({ ':path': PATH, ':authority': 'edge.test' });
      stream.on('error', reject);
      stream.resume();
      stream.on('end', resolve);
    });
    fill.close();
    const stalled = connect(url, {
      ca: fixtures.ca,
      servername: 'edge.test',
      settings: { initialWindowSize: 0 },
    });
    stalled.on('error', () => {});
    const started = performance.now();
    let goaway = -1;
    stalled.once('goaway', () => (goaway = performance.now() - started));
    const stream = stalled.request({ ':path': PATH, ':authority': 'edge.test' });
    stream.on('error', () => {});
    const status = await new Promise<number>((resolve) =>
      stream.once('response', (h) => resolve(Number(h[':status']))),
    );
    assert.equal(status, 200);
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      new Promise<boolean>((resolve) => stalled.once('close', () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 10_000, false))),
    ]);
    clearTimeout(timer);
    stalled.destroy();
    assert.ok(goaway >= 1000, `GOAWAY after ${goaway} ms`);
    assert.ok(closed, 'the connection was still open after 10 s');
    // Closed an idle period after the GOAWAY, not at once: streams in flight had that long.
    const ms = performance.now() - started;
    assert.ok(ms - goaway >= 1000, `GOAWAY after ${goaway} ms, closed after ${ms} ms`);
    const sessions = node.node.secureListeners[0]!.sessions;
    for (let i = 0; i < 100 && sessions.size > 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sessions.size, 0);
    assert.equal(origin.count(PATH), 1);
  });
});
