/**
 * HTTP/2 answered on node:http2's raw 'stream' event (src/http/h2-exchange.ts): hits, misses,
 * HEAD, 304, Range, large bodies to a slow reader, clients that reset a stream mid-body, long
 * URLs, many Vary variants, request bodies passed through, errors, and expectations — with
 * node:http2's own client.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LARGE = Buffer.alloc(2 * 1024 * 1024 + 333);
for (let i = 0; i < LARGE.length; i++) LARGE[i] = (i * 31 + (i >> 8)) & 0xff;
const SMALL = 'a small body over HTTP/2\n';
const LONG = `/raw/${'p'.repeat(70)}/${'q'.repeat(40)}/index.html?query=${'r'.repeat(30)}`;
const SHORT = '/raw/s';
const HERD = `/raw/herd/${'h'.repeat(80)}/cold.html?campaign=${'c'.repeat(30)}`;
let releaseHerd!: () => void;
const herdGate = new Promise<void>((resolve) => {
  releaseHerd = resolve;
});
const LANGUAGES = Array.from({ length: 24 }, (_, i) => `l${i}`);
const CONNECTION_FIELDS = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Buffer;
  informational: number[];
}

/** One request on `session`; the body (if any) is written whole. */
function send(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: Buffer,
  onStream?: (stream: ClientHttp2Stream) => void,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const informational: number[] = [];
    let status = 0;
    let fields: Answer['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('headers', (h) => informational.push(Number(h[':status'])));
    stream.on('response', (h) => {
      status = Number(h[':status']);
      fields = h as Answer['headers'];
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, headers: fields, body: Buffer.concat(chunks), informational }));
    stream.on('error', reject);
    onStream?.(stream);
    if (body !== undefined) stream.end(body);
  });
}

function assertNoConnectionFields(answer: Answer): void {
  for (const name of CONNECTION_FIELDS) assert.equal(answer.headers[name], undefined, name);
}

/** Polls `check` every 20 ms, at most 250 times (5 s). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (check()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('HTTP/2 on the raw stream', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let url: string;
  let session: ClientHttp2Session;
  /** Bytes of /raw/slow-large sent by the origin before it ends (so a client reset lands mid-body). */
  let slowSent = 0;

  const get = (path: string, extra: Record<string, string> = {}) =>
    send(session, { ':path': path, ':authority': 'edge.test', ...extra });

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test', 'localhost']);
    origin = await startOrigin({
      [LONG]: respond(
        200,
        { 'cache-control': 'max-age=60', etag: '"long-1"', 'content-type': 'text/html' },
        SMALL,
      ),
      [SHORT]: respond(200, { 'cache-control': 'max-age=60', etag: '"short-1"' }, SMALL),
      '/raw/head': respond(200, { 'cache-control': 'max-age=60' }, SMALL),
      '/raw/large': respond(
        200,
        { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' },
        LARGE,
      ),
      '/raw/vary': (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
        res.end(`language ${req.headers['accept-language']}`);
      },
      '/raw/slow-large': async (_req, res) => {
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          'content-length': String(LARGE.length),
          'content-type': 'application/octet-stream',
        });
        // The first quarter at once, the rest a piece at a time: the client resets in between.
        const quarter = LARGE.length >> 2;
        res.write(LARGE.subarray(0, quarter));
        slowSent = quarter;
        for (let at = quarter; at < LARGE.length; at += 256 * 1024) {
          await sleep(20);
          const piece = LARGE.subarray(at, Math.min(LARGE.length, at + 256 * 1024));
          res.write(piece);
          slowSent += piece.length;
        }
        res.end();
      },
      '/raw/no-store': async (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'application/octet-stream' });
        res.write(LARGE.subarray(0, 256 * 1024));
        for (let i = 0; i < 50 && !res.destroyed; i++) await sleep(20);
        res.end(LARGE.subarray(256 * 1024, 512 * 1024));
      },
      [HERD]: async (_req, res) => {
        await herdGate;
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end(SMALL);
      },
      '/raw/broken': (_req, res) => res.socket?.destroy(),
      '/raw/post': (req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
        res.end(origin.requests.findLast((r) => r.path === req.url)?.body);
      },
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }],
      },
    });
    url = `https://${node.node.addresses[0]}`;
    session = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
  });

  after(async () => {
    session.close();
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it("answers streams with its own 'stream' listener only (node:http2's compatibility one removed)", () => {
    assert.equal(node.node.secureListeners[0]!.server.listenerCount('stream'), 1);
  });

  it('answers a miss, then hits, for a URL over 100 characters and a short one, one origin request each', async () => {
    assert.ok(LONG.length > 100);
    for (const path of [LONG, SHORT]) {
      const miss = await get(path);
      assert.equal(miss.status, 200);
      assert.equal(miss.body.toString(), SMALL);
      assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
      assert.match(String(miss.headers.via), /^1\.1 /);
      assertNoConnectionFields(miss);
      for (let i = 0; i < 3; i++) {
        const hit = await get(path);
        assert.equal(hit.status, 200);
        assert.equal(hit.body.toString(), SMALL);
        assert.equal(hit.headers['content-length'], String(Buffer.byteLength(SMALL)));
        assert.match(String(hit.headers['cache-status']), /; hit; ttl=/);
        assert.ok(hit.headers['x-request-id']);
        assert.ok(hit.headers.age !== undefined);
        assertNoConnectionFields(hit);
      }
      assert.equal(origin.count(path), 1);
    }
  });

  it('answers HEAD with the head alone: a miss fills with GET (cache.convertHead), then hits', async () => {
    const headMiss = await get('/raw/head', { ':method': 'HEAD' });
    assert.equal(headMiss.status, 200);
    assert.equal(headMiss.body.length, 0);
    assert.match(String(headMiss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
    await node.node.idle();
    const hit = await get('/raw/head');
    assert.equal(hit.body.toString(), SMALL);
    assert.match(String(hit.headers['cache-status']), /; hit/);
    const headHit = await get('/raw/head', { ':method': 'HEAD' });
    assert.equal(headHit.status, 200);
    assert.equal(headHit.body.length, 0);
    assert.equal(headHit.headers['content-length'], String(Buffer.byteLength(SMALL)));
    assert.match(String(headHit.headers['cache-status']), /; hit/);
    assert.deepEqual(
      origin.requests.filter((r) => r.path === '/raw/head').map((r) => r.method),
      ['GET'],
    );
  });

  it('answers 304 to a matching If-None-Match from the cache, without a body or content fields', async () => {
    await get(LONG);
    const answer = await get(LONG, { 'if-none-match': '"long-1"' });
    assert.equal(answer.status, 304);
    assert.equal(answer.body.length, 0);
    assert.equal(answer.headers['content-length'], undefined);
    assert.equal(answer.headers['content-type'], undefined);
    assert.equal(answer.headers.etag, '"long-1"');
    assert.match(String(answer.headers['cache-status']), /; hit/);
    assert.equal(origin.count(LONG), 1);
  });

  it('answers single ranges (206) and unsatisfiable ones (416) from the cache', async () => {
    await get(SHORT);
    const part = await get(SHORT, { range: 'bytes=2-6' });
    assert.equal(part.status, 206);
    assert.equal(part.body.toString(), SMALL.slice(2, 7));
    assert.equal(part.headers['content-range'], `bytes 2-6/${Buffer.byteLength(SMALL)}`);
    const none = await get(SHORT, { range: 'bytes=5000-' });
    assert.equal(none.status, 416);
    assert.equal(none.body.length, 0);
    assert.equal(origin.count(SHORT), 1);
  });

  it('streams a 2 MiB body to a reader that pauses, on the miss and the hit, byte for byte', async () => {
    const slowly = (stream: ClientHttp2Stream) => {
      let pauses = 0;
      stream.on('data', () => {
        if (pauses >= 20) return;
        pauses++;
        stream.pause();
        setTimeout(() => stream.resume(), 15);
      });
    };
    for (const expected of ['fwd=miss', 'hit']) {
      const answer = await send(
        session,
        { ':path': '/raw/large', ':authority': 'edge.test' },
        undefined,
        slowly,
      );
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers['cache-status']), new RegExp(expected));
      assert.equal(answer.body.length, LARGE.length);
      assert.ok(answer.body.equals(LARGE));
    }
    assert.equal(origin.count('/raw/large'), 1);
  });

  it('a client that resets a miss mid-body leaves a whole entry, never a truncated one, and the node answers on', async () => {
    const reset = new Promise<number>((resolve) => {
      const stream = session.request({ ':path': '/raw/slow-large', ':authority': 'edge.test' });
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 64 * 1024 && !stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      });
      stream.on('close', () => resolve(received));
      stream.on('error', () => {});
    });
    assert.ok((await reset) < LARGE.length);
    // The fill goes on without its client (docs/architecture.md): wait for the origin to finish.
    await until(() => slowSent === LARGE.length, 'the origin to send the whole body');
    let answer = await get('/raw/slow-large');
    for (let i = 0; i < 50 && !/; hit/.test(String(answer.headers['cache-status'])); i++) {
      await sleep(20);
      answer = await get('/raw/slow-large');
    }
    assert.match(String(answer.headers['cache-status']), /; hit/);
    assert.equal(answer.body.length, LARGE.length);
    assert.ok(answer.body.equals(LARGE));
    assert.equal(origin.count('/raw/slow-large'), 1);
  });

  it('a client that resets a hit or a relayed body mid-stream costs nothing but that stream', async () => {
    await get('/raw/large');
    for (const path of ['/raw/large', '/raw/no-store']) {
      await new Promise<void>((resolve) => {
        const stream = session.request({ ':path': path, ':authority': 'edge.test' });
        stream.on('data', () => {
          if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        });
        stream.on('close', () => resolve());
        stream.on('error', () => {});
      });
    }
    const after = await get(SHORT);
    assert.equal(after.status, 200);
    assert.equal(after.body.toString(), SMALL);
  });

  it('collapses twelve streams for one cold key into one origin request; a follower reset while waiting costs nothing', async () => {
    const waiters = () => node.node.edge.collapse.pending(`https://edge.test${HERD}`)?.waiters ?? -1;
    // One leader at the origin (held there) and eleven followers waiting for it.
    const answers = Array.from({ length: 12 }, () => get(HERD));
    await until(
      () => origin.count(HERD) === 1 && waiters() === 11,
      'the leader at the origin and 11 followers',
    );
    // A thirteenth stream joins the wait and is reset by its client: it leaves the wait, nothing else.
    const reset = session.request({ ':path': HERD, ':authority': 'edge.test' });
    reset.on('error', () => {});
    await until(() => waiters() === 12, 'the thirteenth stream waiting');
    reset.close(constants.NGHTTP2_CANCEL);
    await until(() => waiters() === 11, 'the reset stream gone from the wait');
    releaseHerd();
    for (const answer of await Promise.all(answers)) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body.toString(), SMALL);
      assertNoConnectionFields(answer);
    }
    assert.equal(origin.count(HERD), 1);
    const hit = await get(HERD);
    assert.equal(hit.status, 200);
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(HERD), 1);
  });

  it('answers twelve 2 MiB hits at once on one connection, none refused, byte for byte', async () => {
    await get('/raw/large');
    const count = origin.count('/raw/large');
    // A client with node's default 64 KiB windows: the node may queue only what the session's
    // memory bound allows, or it refuses new streams (ENHANCE_YOUR_CALM).
    const client = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    try {
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => send(client, { ':path': '/raw/large', ':authority': 'edge.test' })),
      );
      for (const answer of answers) {
        assert.equal(answer.status, 200);
        assert.match(String(answer.headers['cache-status']), /^strata; hit/);
        assert.equal(answer.body.length, LARGE.length);
        assert.ok(answer.body.equals(LARGE));
      }
      assert.equal(origin.count('/raw/large'), count);
    } finally {
      client.close();
    }
  });

  it('answers 100 streams of a 2 MiB hit on one connection whose client reads nothing, none refused', async () => {
    await get('/raw/large');
    const client = connect(url, { ca: fixtures.ca, servername: 'edge.test' });
    client.on('error', () => {});
    let answered = 0;
    const refused: number[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const stream = client.request({ ':path': '/raw/large', ':authority': 'edge.test' });
        stream.on('response', (fields) => {
          if (fields[':status'] === 200) answered++;
        });
        stream.on('data', () => stream.pause());
        stream.on('error', () => {});
        stream.on('close', () => {
          if (stream.rstCode !== 0 && stream.rstCode !== constants.NGHTTP2_CANCEL)
            refused.push(stream.rstCode);
        });
      }
      await until(() => answered + refused.length === 100, '100 answers or refusals');
      assert.deepEqual(refused, [], 'no stream refused (11: ENHANCE_YOUR_CALM)');
      assert.equal(answered, 100);
    } finally {
      client.destroy();
    }
  });

  it('keeps 24 Vary variants of one URL apart, one origin request each', async () => {
    for (const language of LANGUAGES) {
      const answer = await get('/raw/vary', { 'accept-language': language });
      assert.equal(answer.body.toString(), `language ${language}`);
      assert.match(String(answer.headers['cache-status']), /fwd=(vary-)?miss; fwd-status=200; stored/);
      // Committed just after its answer ends: the next variant must not find this fill still
      // running (a variant asked meanwhile is fetched on its own, unstored).
      await node.node.idle();
    }
    for (const language of LANGUAGES) {
      const answer = await get('/raw/vary', { 'accept-language': language });
      assert.equal(answer.body.toString(), `language ${language}`);
      assert.match(String(answer.headers['cache-status']), /; hit/);
    }
    assert.equal(origin.count('/raw/vary'), LANGUAGES.length);
  });

  it('passes POST and PURGE bodies to the origin, buffered and streamed, and relays the answer', async () => {
    for (const [method, size] of [
      ['POST', 1000],
      ['POST', 300 * 1024],
      ['PURGE', 200],
    ] as const) {
      const body = LARGE.subarray(0, size);
      const answer = await send(
        session,
        {
          ':method': method,
          ':path': '/raw/post',
          ':authority': 'edge.test',
          'content-length': String(size),
        },
        body,
      );
      assert.equal(answer.status, 200, method);
      assert.ok(answer.body.equals(body), `${method} ${size}`);
      assert.equal(origin.requests.findLast((r) => r.path === '/raw/post')?.method, method);
    }
  });

  it('passes a body sent without Content-Length whole (HTTP/2 ends it with the stream), and never answers such a GET from the cache', async () => {
    for (const size of [10, 5000, 300 * 1024]) {
      const body = LARGE.subarray(0, size);
      const answer = await send(
        session,
        { ':method': 'POST', ':path': '/raw/post', ':authority': 'edge.test' },
        body,
      );
      assert.equal(answer.status, 200);
      assert.ok(answer.body.equals(body), `${size} bytes came back as ${answer.body.length}`);
      assert.equal(origin.requests.findLast((r) => r.path === '/raw/post')?.body.length, size);
    }
    // A GET with a body is a fat request: passed, never a hit (docs/security.md).
    assert.match(String((await get(SHORT)).headers['cache-status']), /; (?:hit|fwd=\w*miss)/);
    const fat = await send(session, { ':path': SHORT, ':authority': 'edge.test' }, Buffer.from('body'));
    assert.match(String(fat.headers['cache-status']), /fwd=bypass/);
  });

  it('answers 502 with Proxy-Status when the origin fails, and no connection field', async () => {
    const answer = await get('/raw/broken');
    assert.equal(answer.status, 502);
    assert.ok(answer.headers['proxy-status']);
    assertNoConnectionFields(answer);
  });

  it('sends 100 Continue once the request is accepted, and refuses another expectation (417)', async () => {
    const continued = await send(
      session,
      {
        ':method': 'POST',
        ':path': '/raw/post',
        ':authority': 'edge.test',
        'content-length': '5',
        expect: '100-continue',
      },
      Buffer.from('hello'),
    );
    assert.equal(continued.status, 200);
    assert.deepEqual(continued.informational, [100]);
    assert.equal(continued.body.toString(), 'hello');
    const refused = await get(SHORT, { expect: 'something-else' });
    assert.equal(refused.status, 417);
    assert.match(String(refused.headers['cache-status']), /; detail=expectation$/);
  });
});

describe('HTTP/2 request bodies cut short by the client', () => {
  let fixtures: Fixtures;
  let origin: Server;
  let node: TestNode;
  let session: ClientHttp2Session;
  const seen = { started: 0, whole: 0, cut: 0 };

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    // An origin that says whether each request body arrived whole or was cut.
    origin = createServer((req: IncomingMessage, res) => {
      seen.started++;
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on('end', () => {
        if (bytes === Number(req.headers['content-length'])) seen.whole++;
        else seen.cut++;
        res.end('ok');
      });
      req.on('close', () => {
        if (!req.complete) seen.cut++;
      });
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    node = await startNode({
      origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
      config: { listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }] },
    });
    session = connect(`https://${node.node.addresses[0]}`, { ca: fixtures.ca, servername: 'edge.test' });
  });

  after(async () => {
    session.close();
    await node.close();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
    fixtures.remove();
  });

  it('a streamed body reset mid-way reaches the origin as cut, never as a whole body', async () => {
    const size = 1024 * 1024;
    await new Promise<void>((resolve) => {
      const stream = session.request(
        { ':method': 'POST', ':path': '/upload', ':authority': 'edge.test', 'content-length': String(size) },
        { endStream: false },
      );
      stream.on('error', () => {});
      stream.on('close', () => resolve());
      stream.write(Buffer.alloc(256 * 1024, 1), () => {
        setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), 50);
      });
    });
    await until(() => seen.started === 1 && seen.cut > 0, 'the origin to see the body cut');
    assert.equal(seen.whole, 0);
  });

  it('a buffered body reset mid-way never reaches the origin, and the node answers on', async () => {
    const before = seen.started;
    await new Promise<void>((resolve) => {
      const stream = session.request(
        { ':method': 'POST', ':path': '/small', ':authority': 'edge.test', 'content-length': '1000' },
        { endStream: false },
      );
      stream.on('error', () => {});
      stream.on('close', () => resolve());
      stream.write(Buffer.alloc(400, 2), () => stream.close(constants.NGHTTP2_CANCEL));
    });
    const answer = await send(session, { ':path': '/after', ':authority': 'edge.test' });
    assert.equal(answer.status, 200);
    assert.equal(seen.started, before + 1);
    assert.equal(seen.whole, 0);
  });
});
