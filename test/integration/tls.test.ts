import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request as undiciRequest } from 'undici';
import { createFixtures, type Fixtures, subjectName } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LARGE = Buffer.alloc(3 * 1024 * 1024 + 17, 'xyz');
const LONG = `/assets/${'a'.repeat(60)}/${'b'.repeat(40)}/page.css?v=${'c'.repeat(30)}`;

interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  bytes: Buffer;
}

/** One HTTP/2 request on a fresh session (closed after). */
function h2get(
  url: string,
  ca: string,
  path: string,
  extra: Record<string, string> = {},
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const session = h2connect(url, { ca, servername: 'a.test' });
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...extra });
    let status = 0;
    let headers: H2Response['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as H2Response['headers'];
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      session.close();
      const bytes = Buffer.concat(chunks);
      resolve({ status, headers, body: bytes.toString(), bytes });
    });
    stream.on('error', reject);
    stream.end();
  });
}

/** The subject CN of the certificate the node presents for `servername` (undefined: no SNI). */
function presented(port: number, ca: string, servername: string | undefined): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.once('secureConnect', () => {
      const name = subjectName(socket.getPeerCertificate());
      socket.destroy();
      resolve(name);
    });
    socket.once('error', reject);
  });
}

describe('TLS and HTTP/2 listener', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let base: string;
  let port: number;

  before(async () => {
    fixtures = createFixtures();
    const main = fixtures.leaf('default', ['default.test', 'localhost']);
    const a = fixtures.leaf('a', ['a.test']);
    const b = fixtures.leaf('b', ['b.test']);
    const wild = fixtures.leaf('wild', ['*.wild.test']);
    origin = await startOrigin({
      '/page': respond(200, { 'cache-control': 'max-age=60' }, 'hello over tls'),
      [LONG]: respond(200, { 'cache-control': 'max-age=60' }, 'long body'),
      '/h2': respond(200, { 'cache-control': 'max-age=60' }, 'h2 body'),
      '/h1': respond(200, { 'cache-control': 'max-age=60' }, 'h1 body'),
      '/echo': (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(req.headers));
      },
      '/large': respond(
        200,
        { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' },
        LARGE,
      ),
      '/multi': (_req, res) => {
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('link', ['</a.css>; rel=preload', '</b.js>; rel=preload']);
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end('multi');
      },
      '/curl': respond(200, { 'cache-control': 'max-age=60' }, 'curl body'),
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          {
            listen: '127.0.0.1:0',
            tls: {
              cert: main.cert,
              key: main.key,
              sni: [
                { hosts: ['a.test'], ...a },
                { hosts: ['b.test'], ...b },
                { hosts: ['*.wild.test'], ...wild },
              ],
            },
          },
        ],
      },
    });
    base = `https://${node.node.addresses[0]}`;
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('answers HTTP/2 and the second request is a hit, one origin request', async () => {
    const first = await h2get(base, fixtures.ca, '/h2');
    await node.node.idle();
    const second = await h2get(base, fixtures.ca, '/h2');
    assert.equal(first.status, 200);
    assert.equal(first.body, 'h2 body');
    assert.match(String(first.headers['cache-status']), /^strata; fwd=miss; fwd-status=200; stored$/);
    assert.equal(second.status, 200);
    assert.equal(second.body, 'h2 body');
    assert.match(String(second.headers['cache-status']), /^strata; hit; ttl=\d+/);
    assert.equal(second.headers.connection, undefined);
    assert.equal(origin.count('/h2'), 1);
  });

  it('streams a 3 MiB body over HTTP/2 on the miss and from the cache on the hit, byte for byte', async () => {
    const first = await h2get(base, fixtures.ca, '/large');
    await node.node.idle();
    const second = await h2get(base, fixtures.ca, '/large');
    assert.equal(first.bytes.length, LARGE.length);
    assert.ok(first.bytes.equals(LARGE));
    assert.ok(second.bytes.equals(LARGE));
    assert.match(String(second.headers['cache-status']), /^strata; hit/);
    assert.equal(second.headers['content-length'], String(LARGE.length));
    assert.equal(origin.count('/large'), 1);
  });

  it('keeps repeated fields (Link, Set-Cookie) on HTTP/2 answers, relayed and from the cache', async () => {
    const first = await h2get(base, fixtures.ca, '/multi');
    await node.node.idle();
    const second = await h2get(base, fixtures.ca, '/multi');
    assert.deepEqual(first.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(first.headers.link, '</a.css>; rel=preload, </b.js>; rel=preload');
    assert.equal(second.headers.link, '</a.css>; rel=preload, </b.js>; rel=preload');
    assert.equal(second.body, 'multi');
  });

  it('serves HTTP/1.1 over TLS on the same port, keyed like HTTP/2 (https scheme)', async () => {
    const agent = new Agent({ allowH2: false, connect: { ca: fixtures.ca, servername: 'a.test' } });
    try {
      const first = await undiciRequest(`${base}/h1`, { dispatcher: agent });
      assert.equal(origin.requests[origin.requests.length - 1]!.headers.via, '1.1 strata');
      assert.equal(await first.body.text(), 'h1 body');
      await node.node.idle();
      const second = await undiciRequest(`${base}/h1`, { dispatcher: agent });
      assert.equal(await second.body.text(), 'h1 body');
      assert.match(String(second.headers['cache-status']), /^strata; hit/);
      // The same URL over HTTP/2 is the same cache entry.
      const h2 = await h2get(base, fixtures.ca, '/h1', { ':authority': `127.0.0.1:${port}` });
      assert.match(String(h2.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/h1'), 1);
    } finally {
      await agent.close();
    }
  });

  it('undici with allowH2 gets HTTP/2 for a URL of real length, then a hit', async () => {
    const agent = new Agent({ allowH2: true, connect: { ca: fixtures.ca, servername: 'a.test' } });
    try {
      const first = await undiciRequest(`${base}${LONG}`, { dispatcher: agent });
      assert.equal(await first.body.text(), 'long body');
      await node.node.idle();
      const second = await undiciRequest(`${base}${LONG}`, { dispatcher: agent });
      assert.equal(await second.body.text(), 'long body');
      assert.match(String(second.headers['cache-status']), /^strata; hit/);
      assert.equal(second.headers.connection, undefined);
      assert.equal(origin.count(LONG), 1);
    } finally {
      await agent.close();
    }
  });

  it('tells the origin the request came over https, with Via 2 for an HTTP/2 client', async () => {
    const h2 = await h2get(base, fixtures.ca, '/echo', { 'x-forwarded-proto': 'http' });
    const seen = JSON.parse(h2.body) as Record<string, string>;
    assert.equal(seen['x-forwarded-proto'], 'https');
    assert.match(seen.forwarded!, /proto=https/);
    assert.match(seen.via!, /^2 strata$/);
    assert.equal(seen[':path'], undefined);
    assert.equal(seen[':authority'], undefined);
    assert.equal(seen.host, `a.test:${port}`);
    const h1 = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${base}/echo`, { ca: fixtures.ca, servername: 'a.test' }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk;
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    const seen1 = JSON.parse(h1) as Record<string, string>;
    assert.equal(seen1['x-forwarded-proto'], 'https');
    assert.match(seen1.via!, /^1\.1 strata$/);
  });

  it('takes :authority as the Host for HTTP/2 and refuses a Host that disagrees with it', async () => {
    const ok = await h2get(base, fixtures.ca, '/page', { ':authority': 'www.example.com' });
    assert.equal(ok.status, 200);
    const refused = await h2get(base, fixtures.ca, '/page', { ':authority': 'a.example', host: 'b.example' });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.connection, undefined);
    assert.match(refused.body, /Host disagrees with :authority/);
  });

  it('picks the certificate by SNI: exact names, a wildcard, and the default', async () => {
    assert.equal(await presented(port, fixtures.ca, 'a.test'), 'a.test');
    assert.equal(await presented(port, fixtures.ca, 'b.test'), 'b.test');
    assert.equal(await presented(port, fixtures.ca, 'img.wild.test'), '*.wild.test');
    assert.equal(await presented(port, fixtures.ca, 'deep.img.wild.test'), 'default.test');
    assert.equal(await presented(port, fixtures.ca, 'unknown.test'), 'default.test');
    assert.equal(await presented(port, fixtures.ca, undefined), 'default.test');
  });

  it('speaks TLS 1.3 and accepts TLS 1.2, refuses TLS 1.1', async () => {
    const version = (max: 'TLSv1.3' | 'TLSv1.2' | 'TLSv1.1') =>
      new Promise<string>((resolve) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port,
          ca: fixtures.ca,
          servername: 'a.test',
          maxVersion: max,
          minVersion: 'TLSv1',
        });
        socket.once('secureConnect', () => {
          resolve(socket.getProtocol() ?? '');
          socket.destroy();
        });
        socket.once('error', () => resolve('refused'));
      });
    assert.equal(await version('TLSv1.3'), 'TLSv1.3');
    assert.equal(await version('TLSv1.2'), 'TLSv1.2');
    assert.equal(await version('TLSv1.1'), 'refused');
  });

  it('curl --http2 gets HTTP/2 and a hit on the second request', async (t) => {
    const run = (): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(
          'curl',
          [
            '-sS',
            '-i',
            '--http2',
            '--cacert',
            fixtures.caFile,
            '--resolve',
            `localhost:${port}:127.0.0.1`,
            `https://localhost:${port}/curl`,
          ],
          { timeout: 10_000 },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        );
      });
    let first: string;
    try {
      first = await run();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return t.skip('curl is not installed');
      throw error;
    }
    await node.node.idle();
    const second = await run();
    assert.match(first, /^HTTP\/2 200/);
    assert.match(second, /^HTTP\/2 200/);
    assert.match(second, /cache-status: strata; hit/i);
    assert.equal(origin.count('/curl'), 1);
  });
});
