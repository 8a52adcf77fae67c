/**
 * Request bodies the origin does not read to their end, clients that leave mid-upload, and
 * 100 Continue held back until the site's checks passed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from '../helpers/http.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { rawExchange } from '../helpers/raw.ts';
import { until } from '../helpers/wait.ts';

const LONG = `/api/v2/uploads/${'customer-documents/'.repeat(5)}scan.pdf?batch=2026-12-03&checksum=sha256`;
const MiB = 1024 * 1024;

/** Sends `head` and `body` on one connection, then `next` once the first answer's head arrived; collects until close or `ms`. */
function exchange(port: number, head: string, body: Buffer, next: string, ms = 4000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let sentNext = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, ms);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      if (!sentNext && text.includes('\r\n\r\n')) {
        sentNext = true;
        socket.write(next);
      }
      if (text.endsWith('second\r\n0\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(head);
    socket.write(body);
  });
}

describe('uploads', () => {
  let origin: Server;
  let edge: TestNode;
  let port: number;
  const lines: Array<Record<string, unknown>> = [];
  const hashes: string[] = [];
  const asked: string[] = [];

  before(async () => {
    // An origin of its own: the test helper's reads every body before it routes.
    origin = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (req.url === '/second') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('second');
        return;
      }
      const early = new URL(req.url ?? '/', 'http://origin').searchParams.get('early');
      if (early !== null) {
        // Answers at once, reading nothing of the body (as a 413 or an auth failure would).
        res.writeHead(Number(early), { 'content-type': 'text/plain' });
        res.end('refused');
        return;
      }
      const hash = createHash('sha256');
      req.on('data', (data: Buffer) => hash.update(data));
      req.on('end', () => {
        hashes.push(hash.digest('hex'));
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end('stored');
      });
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info', access: true },
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['origin'],
            security: { limits: { maxBodySize: 8 * MiB } },
          },
        ],
      },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
  });

  for (const [name, framing] of [
    ['Content-Length', (n: number) => `Content-Length: ${n}\r\n`],
    ['chunked', () => 'Transfer-Encoding: chunked\r\n'],
  ] as const) {
    it(`reads the next request on the connection after an origin answered a ${name} upload early`, async () => {
      const size = 5 * MiB;
      const raw = Buffer.alloc(size, 7);
      const body =
        name === 'chunked'
          ? Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), raw, Buffer.from('\r\n0\r\n\r\n')])
          : raw;
      const text = await exchange(
        port,
        `POST ${LONG}&early=403 HTTP/1.1\r\nHost: shop.example\r\n${framing(size)}\r\n`,
        body,
        'GET /second HTTP/1.1\r\nHost: shop.example\r\n\r\n',
      );
      assert.match(text, /^HTTP\/1\.1 403 /);
      assert.match(text, /\r\nrefused\r\n/);
      assert.match(
        text,
        /HTTP\/1\.1 200 [\s\S]*\r\nsecond\r\n/,
        'the pipelined request was answered on the same connection',
      );
    });
  }

  it('still delivers an upload byte for byte when the origin reads it all', async () => {
    const body = Buffer.alloc(3 * MiB);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32BE(i, i);
    const res = await request(`${edge.url}${LONG}`, {
      method: 'PUT',
      body,
      headers: { host: 'shop.example' },
    });
    assert.equal(res.status, 201);
    assert.equal(hashes.at(-1), createHash('sha256').update(body).digest('hex'));
  });

  it('logs a client leaving mid-upload as the client’s doing, not an internal failure', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`POST ${LONG}&left=1 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 10000\r\n\r\n`);
      socket.write(Buffer.alloc(100, 1));
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 100);
    });
    for (
      let i = 0;
      i < 100 && !lines.some((l) => l.msg === 'request completed' && String(l.path).includes('left=1'));
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 10));
    const internal = lines.filter((line) => line.level === 50);
    assert.deepEqual(
      internal.map((line) => line.msg),
      [],
      'no error-level line',
    );
    const line = lines.find((l) => l.msg === 'request completed' && String(l.path).includes('left=1'));
    assert.equal(line?.status, 499, 'no answer was sent: not the 200 node:http starts with');
    assert.equal(line?.complete, false);
  });

  it('refuses a body over the site’s limit without 100 Continue first (RFC 9110 §10.1.1)', async () => {
    const before = asked.length;
    const { text } = await rawExchange(
      port,
      `PUT ${LONG} HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nContent-Length: ${600 * MiB}\r\n\r\n`,
    );
    assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 100));
    assert.doesNotMatch(text, /100 Continue/);
    assert.equal(asked.length, before);
  });
});

// A chunked upload whose framing breaks part-way (a bad chunk-size line, a chunk longer than it
// said) after the origin request had started: node:http's parser refuses the rest, and the
// request itself neither ended nor failed until the client's socket closed. The origin request
// streaming it stayed open until then (the keep-alive timeout after the refusal), and when it
// failed the request got a second access-log line beside the refusal's.
describe('a chunked upload whose framing breaks part-way', () => {
  const KEEP_ALIVE = 2000;
  let origin: Server;
  let edge: TestNode;
  let port: number;
  const lines: Array<Record<string, unknown>> = [];
  /** What each upload's origin request saw of its body, by its `id` parameter. */
  const bodies = new Map<string, { bytes: number; ended?: string; at?: number }>();
  const uploads: string[] = [];

  before(async () => {
    origin = createServer((req, res) => {
      const id = new URL(req.url ?? '/', 'http://origin').searchParams.get('id');
      if (id === null) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('served');
        return;
      }
      const body: { bytes: number; ended?: string; at?: number } = { bytes: 0 };
      bodies.set(id, body);
      uploads.push(id);
      const ended = (how: string) => {
        if (body.ended !== undefined) return;
        body.ended = how;
        body.at = performance.now();
      };
      req.on('data', (data: Buffer) => {
        body.bytes += data.length;
      });
      req.on('end', () => {
        ended('end');
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end('stored');
      });
      req.on('error', () => ended('error'));
      req.on('close', () => ended(req.complete ? 'end' : 'error'));
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info', access: true },
        // One connection per client: a new one is served only once the node closed the last.
        proxy: { keepAliveTimeout: KEEP_ALIVE, maxConnectionsPerClient: 1 },
      },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
  });

  for (const [name, id, bad] of [
    ['a bad chunk-size line', 'size', 'zz\r\nmore\r\n'],
    ['a chunk longer than its size', 'long', '3\r\nabcdefgh\r\n0\r\n\r\n'],
  ] as const) {
    it(`answers ${name} 400 once, and aborts the origin request at once`, async () => {
      const from = lines.length;
      // A client that keeps its side open after the answer, as one still sending would.
      const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let text = '';
      let ended = false;
      let served = false;
      client.on('error', () => {});
      client.on('data', (data: Buffer) => {
        text += data.toString('latin1');
      });
      client.on('end', () => {
        ended = true;
      });
      try {
        client.write(
          `PUT /files/scan.pdf?id=${id} HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
        );
        assert.ok(await until(() => bodies.get(id)?.bytes === 5, 3000), 'the origin got the first chunk');
        const sent = performance.now();
        client.write(bad);
        assert.ok(await until(() => ended, 3000), 'the node ended the connection');
        assert.equal(
          text,
          'HTTP/1.1 400 Bad Request\r\nCache-Status: strata; detail=bad-request\r\nConnection: close\r\n\r\n',
        );
        // Well within the keep-alive timeout the refusal's connection lingers for.
        assert.ok(
          await until(() => bodies.get(id)?.ended !== undefined, KEEP_ALIVE / 2),
          'the origin request ended',
        );
        const body = bodies.get(id)!;
        assert.equal(body.ended, 'error', 'the origin saw its request body fail, not end');
        assert.ok(body.at! - sent < KEEP_ALIVE / 2, `origin request aborted after ${body.at! - sent} ms`);
      } finally {
        client.destroy();
        // Once the node closed the connection (a new one is served), every line it writes is out.
        served = await until(
          async () => (await request(`${edge.url}/next`).catch(() => undefined))?.status === 200,
          5000,
          100,
        );
      }
      assert.ok(served, 'served again');
      const own = lines
        .slice(from)
        .filter((line) => line.msg === 'request completed' && line.path !== '/next');
      assert.equal(own.length, 1, JSON.stringify(own));
      assert.equal(own[0]!.status, 400);
      assert.equal(own[0]!.err, 'EDGE_ERR_CLIENT_BAD_REQUEST');
      assert.match(String(own[0]!.errDetail), /^HPE_/);
      assert.deepEqual(
        uploads.filter((upload) => upload === id),
        [id],
        'the upload went to the origin once',
      );
    });
  }
});
