import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const BEHIND = `/behind/${'load-balanced-'.repeat(8)}page.html?session=none&variant=b`;

/** The Via field lines of a raw response head. */
function viaLines(text: string): string[] {
  return text
    .split('\r\n\r\n')[0]!
    .split('\r\n')
    .filter((line) => /^via:/i.test(line))
    .map((line) => line.slice(4).trim());
}

describe('proxying', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;

  before(async () => {
    origin = await startOrigin({
      '/echo': (req, res) => {
        res.writeHead(200, {
          'cache-control': 'no-store',
          connection: 'x-internal',
          'x-internal': 'hop',
          'keep-alive': 'timeout=5',
          'x-end-to-end': 'kept',
        });
        res.end(JSON.stringify(req.headers));
      },
      [BEHIND]: (req, res) => {
        // An origin behind a proxy of its own (a load balancer adding Via), validating by ETag.
        const fields = {
          via: '1.1 upstream-lb',
          etag: '"b1"',
          'cache-control': 'max-age=0, must-revalidate',
        };
        if (req.headers['if-none-match'] === '"b1"') {
          res.writeHead(304, fields);
          res.end();
          return;
        }
        res.writeHead(200, fields);
        res.end('behind a proxy');
      },
      '/behind-pass': (_req, res) => {
        res.writeHead(200, { via: '1.1 upstream-lb', 'cache-control': 'no-store' });
        res.end('passed');
      },
      '/upload': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(`received ${origin.requests.at(-1)?.body.length}`);
      },
      '/slow': (_req, res) => {
        setTimeout(() => {
          if (!res.destroyed) {
            res.writeHead(200, {});
            res.end('late');
          }
        }, 1500);
      },
    });
    edge = await startNode({
      origin: origin.url,
      config: {
        origins: [{ name: 'origin', url: origin.url, responseTimeout: 300 }],
        proxy: { trustedProxies: ['10.9.9.9'] },
      },
    });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('removes hop-by-hop fields both ways, adds Via and sets forwarding fields', async () => {
    const res = await edge.get('/echo', {
      headers: {
        connection: 'x-client-hop',
        'x-client-hop': 'secret',
        te: 'trailers',
        'x-forwarded-for': '6.6.6.6',
        forwarded: 'for=6.6.6.6',
      },
    });
    const seen = JSON.parse(res.text) as Record<string, string>;
    assert.equal(seen['x-client-hop'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen.via, '1.1 strata');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1', 'an untrusted client cannot claim another address');
    assert.equal(seen.forwarded, `for=127.0.0.1;host="127.0.0.1:${port}";proto=http`);
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen.host, `127.0.0.1:${port}`);
    assert.equal(res.headers['x-internal'], undefined);
    assert.equal(res.headers['x-end-to-end'], 'kept');
    assert.equal(res.headers.via, '1.1 strata');
  });

  it('streams request bodies of PUT and POST to the origin', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const res = await edge.get('/upload', {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(res.text, `received ${body.length}`);
    assert.match(String(res.headers['cache-status']), /fwd=method/);
  });

  for (const [name, payload] of [
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
    ['an invalid Host', 'GET / HTTP/1.1\r\nHost: bad host!\r\n\r\n'],
    [
      'an absolute-form target whose authority disagrees with Host',
      'GET http://evil.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n',
    ],
    ['an asterisk target outside OPTIONS', 'GET * HTTP/1.1\r\nHost: a.example\r\n\r\n'],
  ] as const) {
    it(`answers ${name} with 400 and closes the connection`, async () => {
      const before = origin.count();
      const { text, closed } = await rawExchange(port, payload);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(text, /connection: close/i);
      assert.ok(closed);
      assert.equal(origin.count(), before);
    });
  }

  it('answers OPTIONS * itself (the server in general), keeps the connection, and never asks the origin', async () => {
    const before = origin.count();
    const long = `/catalogue/2026/winter/${'collection-'.repeat(10)}item?colour=blue&size=42`;
    // Pipelined: OPTIONS * ten times (once more than an origin may fail before it is ejected), then a GET.
    const payload = `${'OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n'.repeat(10)}GET ${long} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n`;
    const { text, closed } = await rawExchange(port, payload);
    const heads = text.split(/\r\n\r\n/).filter((part) => part.startsWith('HTTP/1.1'));
    assert.equal(heads.length, 11, text);
    for (const head of heads.slice(0, 10)) {
      assert.match(head, /^HTTP\/1\.1 200 OK/);
      assert.match(head, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i);
      assert.match(head, /\r\ncontent-length: 0\r\n/i);
      assert.match(head, /\r\ncache-status: strata; detail=server-options\r\n/i);
      assert.doesNotMatch(head, /connection: close/i);
    }
    // The GET behind them reached the origin, which answered it normally.
    assert.match(heads[10]!, /^HTTP\/1\.1 404 /);
    assert.match(heads[10]!, /cache-status: strata; fwd=miss; fwd-status=404/i);
    assert.ok(closed);
    assert.equal(origin.count(), before + 1);
    assert.equal(origin.requests.at(-1)?.path, long);
    const state = edge.node.edge.sites.resolve('a.example')!.pool.origins[0]!.state;
    assert.equal(state.ejected(Date.now()), false, 'an OPTIONS * never counts against the origin');
  });

  it("sends one Via, the origin's with ours appended, on a miss, a hit revalidated by a 304, and a pass", async () => {
    const ask = async (path: string) => {
      const { text } = await rawExchange(
        port,
        `GET ${path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n`,
      );
      assert.match(text, /^HTTP\/1\.1 200 /);
      return { via: viaLines(text), status: /cache-status: ([^\r]*)/i.exec(text)?.[1] };
    };
    const miss = await ask(BEHIND);
    assert.deepEqual(miss.via, ['1.1 upstream-lb, 1.1 strata']);
    assert.match(String(miss.status), /fwd=miss/);
    // Stored with max-age=0: each reuse is revalidated, and the 304 (with its own Via) refreshes it.
    for (let i = 0; i < 2; i++) {
      const revalidated = await ask(BEHIND);
      assert.deepEqual(revalidated.via, ['1.1 upstream-lb, 1.1 strata']);
      assert.match(String(revalidated.status), /fwd=stale; fwd-status=304/);
    }
    const pass = await ask('/behind-pass');
    assert.deepEqual(pass.via, ['1.1 upstream-lb, 1.1 strata']);
    assert.equal(origin.count(BEHIND), 3);
  });

  it('answers 502 with Proxy-Status when the origin refuses connections', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const dead = await startNode({ origin: `http://127.0.0.1:${deadPort}` });
    try {
      const res = await dead.get('/x');
      assert.equal(res.status, 502);
      assert.match(String(res.headers['proxy-status']), /^strata; error=connection_refused/);
      assert.match(res.text, /^502 /);
    } finally {
      await dead.close();
    }
  });

  it('quotes a proxy.via name no token may be (RFC 9211, RFC 9209), in Cache-Status and Proxy-Status', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const named = await startNode({
      origin: `http://127.0.0.1:${deadPort}`,
      config: { proxy: { via: '1-edge' } },
    });
    try {
      const res = await named.get(`/catalogue/${'digit-first-cache-name-'.repeat(4)}index.html`);
      assert.equal(res.status, 502);
      assert.equal(res.headers['cache-status'], '"1-edge"; fwd=miss');
      assert.match(String(res.headers['proxy-status']), /^"1-edge"; error=connection_refused/);
    } finally {
      await named.close();
    }
  });

  it('answers 504 with Proxy-Status when the origin is too slow', async () => {
    const res = await edge.get('/slow');
    assert.equal(res.status, 504);
    assert.match(String(res.headers['proxy-status']), /error=http_response_timeout/);
  });

  it('keeps streaming a response the origin sends slowly', async () => {
    origin.route('/trickle', (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`part${n}.`);
        if (++n === 5) {
          clearInterval(timer);
          res.end();
        }
      }, 20);
    });
    const res = await request(`${edge.url}/trickle`);
    assert.equal(res.text, 'part0.part1.part2.part3.part4.');
    assert.ok(res.complete);
  });
});
