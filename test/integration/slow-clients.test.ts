import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

/** A path of real length (over 100 characters). */
const LONG = `/media/2026/12/archive/${'quarterly-report-download-'.repeat(4)}file.bin`;
const MiB = 1024 * 1024;

/** Polls `read` every 50 ms until it stays the same for `quietMs`, for at most `limitMs`. */
async function settled(read: () => number, quietMs = 400, limitMs = 5000): Promise<number> {
  const start = Date.now();
  let last = read();
  let since = Date.now();
  while (Date.now() - start < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

/** Resolves true when `socket` closes within `ms`. */
function closesWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Rejects when `promise` takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A raw client that sends `payload` and never reads (its receive buffer fills, then the node's send buffer). */
function nonReader(port: number, payload: string): Socket {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(payload);
  socket.pause();
  return socket;
}

describe('request bodies from slow clients', () => {
  const seen = new Map<string, number>();
  const aborted: string[] = [];
  let originPort = 0;
  const origin = createServer((req, res) => {
    const path = req.url ?? '/';
    seen.set(path, (seen.get(path) ?? 0) + 1);
    req.on('close', () => {
      if (!req.complete) aborted.push(path);
    });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end(path === '/fast' ? 'fast' : 'stored');
    });
  });
  let edge: TestNode;
  let port: number;

  before(async () => {
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originPort = (origin.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${originPort}`;
    edge = await startNode({
      origin: url,
      config: {
        origins: [{ name: 'origin', url, connections: 1 }],
        // One failure would eject the origin: a slow client's body must never count as one.
        sites: [{ name: 'shop', hosts: ['*'], origins: ['origin'], outlier: { consecutiveFailures: 1 } }],
        proxy: { requestBodyTimeout: 300 },
      },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    origin.closeAllConnections();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  });

  it('takes no origin connection for a small body that dribbles, and answers it 408', async () => {
    const clients = [1, 2, 3].map(() =>
      rawExchange(
        port,
        'POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nfirst bytes',
        4000,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fast = await within(request(`${edge.url}/fast`), 2000, 'GET /fast beside slow bodies');
    assert.equal(fast.status, 200);
    assert.equal(fast.text, 'fast');
    for (const client of clients) {
      const { text, closed } = await client;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(closed);
    }
    assert.equal(seen.get('/orders') ?? 0, 0, 'no slow body reached the origin');
  });

  it('releases the origin connection a large body holds once it stops, answering 408', async () => {
    const slow = nonReader(
      port,
      `PUT ${LONG} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(100 * 1024)}`,
    );
    slow.resume();
    let answer = '';
    slow.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const start = Date.now();
    while ((seen.get(LONG) ?? 0) === 0 && Date.now() - start < 2000)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.get(LONG), 1, 'the large body streams to the origin');
    const fast = await within(request(`${edge.url}/fast`), 2000, 'GET /fast behind a stalled body');
    assert.equal(fast.text, 'fast');
    assert.ok(await closesWithin(slow, 2000));
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.deepEqual(aborted, [LONG], 'the origin request was aborted');
  });

  it('releases the origin connection a large body dribbling below the minimum rate holds', async () => {
    aborted.length = 0;
    const path = `${LONG}?dribble`;
    const slow = nonReader(
      port,
      `PUT ${path} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(100 * 1024)}`,
    );
    slow.resume();
    let answer = '';
    slow.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const drip = setInterval(() => {
      if (!slow.destroyed) slow.write('0123456789'); // never idle, 200 bytes a second
    }, 50);
    const start = Date.now();
    while ((seen.get(path) ?? 0) === 0 && Date.now() - start < 2000)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.get(path), 1, 'the large body streams to the origin');
    const fast = await within(request(`${edge.url}/fast`), 2000, 'GET /fast behind a dribbling body');
    assert.equal(fast.text, 'fast');
    assert.ok(await closesWithin(slow, 2000));
    clearInterval(drip);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.deepEqual(aborted, [path], 'the origin request was aborted');
  });

  it('counts none of those slow bodies against the origin: it was never ejected', async () => {
    const ejections = await edge.node.metrics.registry.getSingleMetricAsString(
      'strata_origin_ejections_total',
    );
    assert.doesNotMatch(ejections, /origin="origin"} [1-9]/, ejections);
    const [origin] = edge.node.edge.sites.all[0]!.pool.origins;
    assert.equal(origin!.state.consecutiveFailures, 0);
  });
});

describe('request bodies from clients that go away', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;

  before(async () => {
    origin = await startOrigin({ '/fast': respond(200, { 'cache-control': 'no-store' }, 'fast') });
    edge = await startNode({
      origin: origin.url,
      config: { origins: [{ name: 'origin', url: origin.url, connections: 1 }] },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('survives clients that drop large bodies while they wait for an origin connection', async () => {
    const clients: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      clients.push(
        nonReader(port, `POST ${LONG} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: ${MiB}\r\n\r\nx`),
      );
    }
    const drip = setInterval(() => {
      for (const client of clients) if (!client.destroyed) client.write('x');
    }, 50);
    await new Promise((resolve) => setTimeout(resolve, 400));
    clearInterval(drip);
    for (const client of clients) client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const fast = await within(request(`${edge.url}/fast`), 2000, 'GET /fast after a dropped upload');
    assert.equal(fast.text, 'fast');
    assert.equal(origin.count('/fast'), 1);
  });
});

describe('Expect: 100-continue', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;

  before(async () => {
    origin = await startOrigin({
      '/upload': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(
          `received ${origin.requests.at(-1)?.body.length} expect=${origin.requests.at(-1)?.headers.expect}`,
        );
      },
    });
    edge = await startNode({ origin: origin.url });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers 100 Continue and forwards a 2 MiB upload like curl -T', async () => {
    const body = Buffer.alloc(2 * MiB, 9);
    const before = origin.count();
    const result = await within(
      new Promise<{ status: number; text: string; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method: 'PUT',
            path: '/upload',
            headers: { expect: '100-continue', 'content-length': body.length, host: 'shop.example' },
            agent: false,
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text, continued }));
          },
        );
        req.on('continue', () => {
          continued = true;
          req.end(body);
        });
        req.on('error', reject);
      }),
      5000,
      'upload with Expect',
    );
    assert.ok(result.continued, '100 Continue was sent');
    assert.equal(result.status, 200);
    assert.equal(result.text, `received ${body.length} expect=undefined`);
    assert.equal(origin.count() - before, 1);
  });

  it('answers an expectation it does not support with 417, forwarding nothing', async () => {
    const before = origin.count();
    const { text } = await rawExchange(
      port,
      'PUT /upload HTTP/1.1\r\nHost: shop.example\r\nExpect: telepathy\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    assert.match(text, /^HTTP\/1\.1 417 /);
    assert.equal(origin.count(), before);
  });

  // node:http answered it alone: no request id, no access-log line, and an empty chunked body.
  it('answers the 417 as its own refusal (request id, message), drops the body and keeps the connection', async () => {
    const before = origin.count();
    const { text } = await rawExchange(
      port,
      `PUT /upload/${'expect-refused-'.repeat(7)} HTTP/1.1\r\nHost: shop.example\r\nExpect: telepathy\r\nContent-Length: 11\r\n\r\nhello world` +
        'GET /upload HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n',
    );
    const [refusal, next] = text.split(/(?=HTTP\/1\.1 200 )/);
    assert.match(refusal!, /^HTTP\/1\.1 417 Expectation Failed\r\n/);
    assert.match(refusal!, /\r\nx-request-id: /i);
    assert.match(refusal!, /\r\n\r\n417 expectation not supported\n$/);
    assert.doesNotMatch(refusal!, /connection: close/i);
    assert.match(next ?? '', /\r\nreceived 0 expect=undefined\r\n0\r\n\r\n$/);
    assert.equal(origin.count() - before, 1, 'only the GET behind it reached the origin');
  });

  // node:http reads any Expect naming the 100-continue token as waiting for a 100, and ends the
  // connection after an answer sent without it; what was pipelined behind reached the origin,
  // its answer lost.
  const behind =
    `POST /upload/${'pipelined-unsafe-'.repeat(6)} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 3\r\n\r\nabc` +
    `GET /upload/${'pipelined-safe-'.repeat(7)} HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
  for (const [name, first, status] of [
    [
      '`Expect: 100-continue, foo` (417)',
      `PUT /upload/${'expect-list-'.repeat(9)} HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue, foo\r\nContent-Length: 5\r\n\r\nhello`,
      417,
    ],
    [
      'a target over security.limits.maxUrlLength expecting 100-continue (414)',
      `PUT /upload/${'u'.repeat(9000)} HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`,
      414,
    ],
    [
      'OPTIONS * expecting 100-continue (200)',
      'OPTIONS * HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello',
      200,
    ],
  ] as const) {
    it(`answers ${name} before any 100 Continue with Connection: close, dispatching nothing pipelined behind it`, async () => {
      const before = origin.count();
      const { text, closed } = await rawExchange(port, first + behind);
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), text.slice(0, 200));
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response on the connection');
      assert.match(text, /\r\nconnection: close\r\n/i);
      assert.ok(closed);
      assert.equal(origin.count() - before, 0, 'nothing pipelined behind it reached the origin');
    });
  }

  it('reads Expect: 100-continue sent twice as one expectation: 100 Continue, then the upload', async () => {
    const before = origin.count();
    const { text, closed } = await rawExchange(
      port,
      `PUT /upload HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello` +
        'PUT /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
    );
    assert.ok(closed);
    assert.deepEqual(
      [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1]),
      ['100', '200', '200'],
      text.slice(0, 300),
    );
    assert.match(text, /received 5 expect=undefined[\s\S]*received 3 expect=undefined/);
    assert.equal(origin.count() - before, 2);
  });
});

describe('pipelining and slow readers', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;
  const big = Buffer.alloc(MiB, 1);
  const large = Buffer.alloc(10 * MiB, 2);
  /** Kept whole in the memory tier (cache.memoryObjectSize 9 MiB below), answered with one write. */
  const hot = Buffer.alloc(8 * MiB, 3);
  /** The node's side of each client connection, by request path. */
  const serverSockets = new Map<string, Socket>();
  const onStart = (message: unknown) => {
    const { request: req, socket } = message as { request: IncomingMessage; socket: Socket };
    if (socket.localPort === port) serverSockets.set(req.url ?? '', socket); // not the origin's
  };

  before(async () => {
    subscribe('http.server.request.start', onStart);
    origin = await startOrigin({
      '/big': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
        res.end(big);
      },
      [LONG]: (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
        res.end(large);
      },
      '/hot': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
        res.end(hot);
      },
      '/hot-checked': (req, res) => {
        if (req.headers['if-none-match'] === '"h1"') {
          res.writeHead(304, { etag: '"h1"', 'cache-control': 'no-cache' });
          res.end();
          return;
        }
        res.writeHead(200, {
          etag: '"h1"',
          'cache-control': 'no-cache',
          'content-type': 'application/octet-stream',
        });
        res.end(hot);
      },
      '/fill': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
        res.end(large);
      },
      '/pass': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'application/octet-stream' });
        res.end(large);
      },
    });
    edge = await startNode({
      origin: origin.url,
      config: { proxy: { sendTimeout: 500 } },
      cache: { memoryObjectSize: '9MiB' },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    unsubscribe('http.server.request.start', onStart);
    await edge.close();
    await origin.close();
  });

  it('fetches a bounded number of 200 pipelined misses for a client that never reads', async () => {
    let payload = '';
    for (let i = 0; i < 200; i++)
      payload += `GET /big?${'n'.repeat(100)}=${i} HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
    const client = nonReader(port, payload);
    const fetched = await settled(() => origin.count());
    assert.ok(fetched <= 40, `${fetched} origin fetches for one connection that reads nothing`);
    client.destroy();
    await edge.node.idle();
  });

  it('closes a connection whose client takes nothing of a hot body written whole, after the send timeout', async () => {
    const warm = await request(`${edge.url}/hot`, { headers: { host: 'shop.example' } });
    assert.equal(warm.body.length, hot.length);
    assert.match(String(warm.headers['cache-status']), /stored/);
    await edge.node.idle();
    serverSockets.delete('/hot');
    const client = nonReader(port, 'GET /hot HTTP/1.1\r\nHost: shop.example\r\n\r\n');
    const start = Date.now();
    while (!serverSockets.has('/hot') && Date.now() - start < 2000)
      await new Promise((r) => setTimeout(r, 20));
    const socket = serverSockets.get('/hot')!;
    assert.ok(await closesWithin(socket, 3000), 'the node closed it once the send timeout passed');
    client.destroy();
  });

  it('closes a connection whose client takes nothing of a hot body answered after revalidation', async () => {
    const warm = await request(`${edge.url}/hot-checked`, { headers: { host: 'shop.example' } });
    assert.equal(warm.body.length, hot.length);
    await edge.node.idle();
    const again = await request(`${edge.url}/hot-checked`, { headers: { host: 'shop.example' } });
    assert.equal(again.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    await edge.node.idle();
    const before = origin.count('/hot-checked');
    serverSockets.delete('/hot-checked');
    const client = nonReader(port, 'GET /hot-checked HTTP/1.1\r\nHost: shop.example\r\n\r\n');
    const start = Date.now();
    while (!serverSockets.has('/hot-checked') && Date.now() - start < 2000)
      await new Promise((r) => setTimeout(r, 20));
    const socket = serverSockets.get('/hot-checked')!;
    assert.ok(await closesWithin(socket, 3000), 'the node closed it once the send timeout passed');
    assert.equal(origin.count('/hot-checked') - before, 1, 'revalidated once');
    client.destroy();
  });

  for (const [name, path, prepare] of [
    ['a stored hit', LONG, true],
    ['a fill', '/fill', false],
    ['a pass', '/pass', false],
  ] as const) {
    it(`buffers at most 64 KiB of ${name} for a client that reads nothing, and closes it after the send timeout`, async () => {
      if (prepare) {
        const warm = await request(`${edge.url}${path}`, { headers: { host: 'shop.example' } });
        assert.equal(warm.body.length, large.length);
        await edge.node.idle();
      }
      serverSockets.delete(path);
      const client = nonReader(port, `GET ${path} HTTP/1.1\r\nHost: shop.example\r\n\r\n`);
      const start = Date.now();
      while (!serverSockets.has(path) && Date.now() - start < 2000)
        await new Promise((r) => setTimeout(r, 20));
      const socket = serverSockets.get(path)!;
      let most = 0;
      const written = await settled(() => {
        most = Math.max(most, socket.writableLength);
        return socket.bytesWritten;
      }, 150);
      assert.ok(
        written < large.length,
        `the client read nothing, so the body cannot all be out (${written}, ${most}, ${client.bytesRead})`,
      );
      assert.ok(most <= 64 * 1024 + 16 * 1024, `${most} bytes waiting in the node for one response`);
      assert.ok(await closesWithin(socket, 3000), 'the node closed it once the send timeout passed');
      client.destroy();
      await edge.node.idle();
    });
  }
});
