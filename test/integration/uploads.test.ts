/**
 * Request bodies the origin does not read to their end, clients that leave mid-upload, and
 * 100 Continue held back until the site's checks passed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { rawExchange } from '../helpers/raw.ts';

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
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
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
