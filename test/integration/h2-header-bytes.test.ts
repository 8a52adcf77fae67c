/**
 * The site's security.limits.maxHeaderBytes on HTTP/2. node:http2 applies the listener's
 * http2.maxHeaderListSize only once the client has acknowledged the server's SETTINGS (the first
 * streams of a connection carry any size), and that bound is the operator's choice apart from
 * proxy.maxHeaderSize: the site's own limit must hold on every stream.
 */
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const PATH = `/limits/${'p'.repeat(60)}/header-bytes/index.html?campaign=${'c'.repeat(40)}`;

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

function get(session: ClientHttp2Session, headers: Record<string, string | string[]>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':authority': 'edge.test', ...headers });
    let status = 0;
    let fields: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      fields = h;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, headers: fields, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
  });
}

describe('HTTP/2: the site header section limit', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let url: string;
  const nodes: TestNode[] = [];

  before(async () => {
    fixtures = createFixtures();
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'max-age=60' }, 'body') });
  });

  after(async () => {
    for (const node of nodes) await node.close();
    await origin.close();
    fixtures.remove();
  });

  async function start(http2: Record<string, unknown>, security?: Record<string, unknown>): Promise<void> {
    const leaf = fixtures.leaf('edge', ['edge.test']);
    const sites = security
      ? { sites: [{ name: 'default', hosts: ['*'], origins: ['origin'], security }] }
      : {};
    const node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
        http2,
        ...sites,
      },
    });
    nodes.push(node);
    url = `https://${node.node.addresses[0]}`;
  }

  /** Fills the cache with PATH on a connection of its own, so an answer past the limit would be a hit. */
  async function fill(): Promise<void> {
    const session = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    try {
      const miss = await get(session, { ':path': PATH });
      assert.equal(miss.status, 200);
      assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
    } finally {
      session.close();
    }
  }

  it('answers 431 to the first stream of a connection whose header section is over the limit', async () => {
    await start({});
    await fill();
    const before = origin.count(PATH);
    const session = connect(url, { ca: fixtures.ca, servername: 'edge.test', maxSendHeaderBlockLength: 1e6 });
    try {
      // Sent at once: the client has not acknowledged the server's SETTINGS yet.
      const answer = await get(session, { ':path': PATH, 'x-filler': 'f'.repeat(40 * 1024) });
      assert.equal(answer.status, 431);
      assert.match(answer.body, /request header section too large/);
      const hit = await get(session, { ':path': PATH });
      assert.equal(hit.status, 200);
      assert.equal(hit.body, 'body');
      assert.match(String(hit.headers['cache-status']), /; hit; /);
      assert.equal(origin.count(PATH), before);
    } finally {
      session.close();
    }
  });

  it('answers 431 past the site limit when http2.maxHeaderListSize is raised above it', async () => {
    await start({ maxHeaderListSize: '64KiB' });
    await fill();
    const before = origin.count(PATH);
    const session = connect(url, { ca: fixtures.ca, servername: 'edge.test', maxSendHeaderBlockLength: 1e6 });
    try {
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      const hit = await get(session, { ':path': PATH, 'x-filler': 'f'.repeat(8 * 1024) });
      assert.equal(hit.status, 200);
      assert.match(String(hit.headers['cache-status']), /; hit; /);
      const answer = await get(session, { ':path': PATH, 'x-filler': 'f'.repeat(20 * 1024) });
      assert.equal(answer.status, 431);
      assert.match(answer.body, /request header section too large/);
      assert.equal(origin.count(PATH), before);
    } finally {
      session.close();
    }
  });

  it('counts header fields and bytes, not the pseudo-headers, against the site limits', async () => {
    // The four pseudo-headers carry the request line, which HTTP/1.1 never counts as fields.
    await start({}, { limits: { maxHeaders: 4, maxHeaderBytes: 300 } });
    await fill();
    const before = origin.count(PATH);
    const session = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    try {
      const fields = { accept: 'text/html', 'accept-language': 'en-GB', 'user-agent': 'probe/1.0' };
      const four = await get(session, { ':path': PATH, ...fields, 'x-trace': 't'.repeat(150) });
      assert.equal(four.status, 200, 'four fields of 250 bytes are within 4 and 300');
      assert.match(String(four.headers['cache-status']), /; hit; /);
      const five = await get(session, { ':path': PATH, ...fields, 'x-trace': 't', 'x-five': 'f' });
      assert.equal(five.status, 431);
      assert.match(five.body, /too many request header fields/);
      const big = await get(session, { ':path': PATH, ...fields, 'x-trace': 't'.repeat(260) });
      assert.equal(big.status, 431, 'the fields alone are over 300 bytes');
      assert.equal(origin.count(PATH), before);
    } finally {
      session.close();
    }
  });

  it('counts a Cookie split into crumbs (RFC 9113 §8.2.3) as the one field HTTP/1.1 carries', async () => {
    await start({}, { limits: { maxHeaders: 4, maxHeaderBytes: 520 } });
    await fill();
    const before = origin.count(PATH);
    const session = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    // Twenty crumbs of 20 bytes, one field each on the wire (as browsers send them over HTTP/2):
    // on HTTP/1.1 one `Cookie` field of 438 bytes, the section 498 bytes with the three below.
    const crumbs = (n: number) =>
      Array.from({ length: n }, (_, i) => `c${String(i).padStart(2, '0')}=${'v'.repeat(16)}`);
    try {
      const fields = { accept: 'text/html', 'accept-language': 'en-GB', 'user-agent': 'probe/1.0' };
      const twenty = await get(session, { ':path': PATH, ...fields, cookie: crumbs(20) });
      assert.equal(twenty.status, 200, 'four fields of 498 bytes are within 4 and 520');
      assert.match(String(twenty.headers['cache-status']), /; hit; /);
      const more = await get(session, { ':path': PATH, ...fields, cookie: crumbs(22) });
      assert.equal(more.status, 431, 'joined, the crumbs are over 520 bytes');
      assert.match(more.body, /request header section too large/);
      const five = await get(session, { ':path': PATH, ...fields, cookie: crumbs(2), 'x-five': 'f' });
      assert.equal(five.status, 431);
      assert.match(five.body, /too many request header fields/);
      assert.equal(origin.count(PATH), before);
    } finally {
      session.close();
    }
  });
});
