import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

/** A path of real length (over 100 characters). */
const LONG = `/assets/2026/12/catalogue/${'product-listing-page-'.repeat(5)}index.html`;

/** A page asked for over HTTP/1.0 without Host. */
const HTTP10 = LONG.replace('index.html', 'http10.html');

/** Good requests pipelined behind a bad one: a GET, a POST with a body, another GET. */
const FOLLOWERS =
  `GET ${LONG}?after=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n` +
  'POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 11\r\n\r\nhello world' +
  `GET ${LONG}?after=2 HTTP/1.1\r\nHost: shop.example\r\n\r\n`;

describe('request framing and method policy', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;

  before(async () => {
    origin = await startOrigin({
      [LONG]: respond(200, { 'cache-control': 'max-age=100' }, 'page'),
      '/orders': respond(200, { 'cache-control': 'no-store' }, 'ordered'),
      '/canonical': (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=100' });
        res.end(`host=${req.headers.host} url=${req.url}`);
      },
      '/x': respond(200, { 'cache-control': 'no-store' }, 'x'),
      [HTTP10]: (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=100' });
        res.end(`host=${req.headers.host} url=${req.url}`);
      },
    });
    edge = await startNode({ origin: origin.url });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const [name, bad] of [
    ['a missing Host', 'GET / HTTP/1.1\r\n\r\n'],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
    ['an invalid Host', 'GET / HTTP/1.1\r\nHost: bad host!\r\n\r\n'],
    [
      'an absolute-form target that disagrees with Host',
      'GET http://evil.example/ HTTP/1.1\r\nHost: shop.example\r\n\r\n',
    ],
    ['an asterisk target outside OPTIONS', 'GET * HTTP/1.1\r\nHost: shop.example\r\n\r\n'],
  ] as const) {
    it(`dispatches nothing pipelined behind ${name}`, async () => {
      const before = origin.count();
      const { text, closed } = await rawExchange(port, bad + FOLLOWERS);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response on the connection');
      assert.ok(closed);
      assert.equal(origin.count() - before, 0, 'no request after the rejected one reached the origin');
    });
  }

  for (const [name, first] of [
    [
      'a miss with Connection: close',
      `GET ${LONG}?close=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n`,
    ],
    [
      'a pass with Connection: close',
      'GET /orders HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n',
    ],
    ['an HTTP/1.0 miss without keep-alive', `GET ${LONG}?close=2 HTTP/1.0\r\nHost: shop.example\r\n\r\n`],
  ] as const) {
    it(`answers ${name} and ignores what was pipelined behind it (RFC 9112 §9.6)`, async () => {
      const before = origin.count();
      const { text, closed } = await rawExchange(port, first + FOLLOWERS);
      assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 200));
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response on the connection');
      assert.doesNotMatch(text, / 400 /);
      assert.ok(closed);
      assert.equal(origin.count() - before, 1, 'only the first request reached the origin');
    });
  }

  // RFC 9112 §9.3.2: responses in the order of the requests. The parser's refusal of a later
  // request was written at once, before the answers of the requests ahead of it still with the
  // origin, which were dropped: the client read the 400 as the answer to its POST, which the
  // origin had carried out.
  for (const [name, bad, status] of [
    ['a malformed header', 'GET /x HTTP/1.1\r\nHost: shop.example\r\nBad Header: x\r\n\r\n', 400],
    [
      'a head over proxy.maxHeaderSize',
      `GET /x HTTP/1.1\r\nHost: shop.example\r\nCookie: ${'session=abcdef0123456789; '.repeat(800)}\r\n\r\n`,
      431,
    ],
  ] as const) {
    it(`answers the requests ahead of one the parser refuses (${name}) first, in order`, async () => {
      const before = origin.count();
      const ahead =
        'POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 11\r\n\r\nhello world' +
        `GET ${LONG}?ahead=${status} HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
      const { text, closed } = await rawExchange(port, ahead + bad);
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
      assert.deepEqual(statuses, [200, 200, status], text.slice(0, 300));
      assert.match(
        text,
        /\r\n\r\n7\r\nordered\r\n0\r\n\r\nHTTP\/1\.1 200 [\s\S]*\r\n\r\n4\r\npage\r\n0\r\n\r\n/,
      );
      assert.ok(
        text.endsWith(
          `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Request Header Fields Too Large'}\r\n` +
            `Cache-Status: strata; detail=${status === 400 ? 'bad-request' : 'headers-too-large'}\r\nConnection: close\r\n\r\n`,
        ),
      );
      assert.ok(closed);
      assert.equal(origin.count() - before, 2);
    });
  }

  it('dispatches nothing pipelined behind 200 good requests and a bad one', async () => {
    const before = origin.count();
    let payload = '';
    for (let i = 0; i < 3; i++) payload += `GET /x HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
    payload += 'GET * HTTP/1.1\r\nHost: shop.example\r\n\r\n';
    for (let i = 0; i < 200; i++) payload += `GET ${LONG}?n=${i} HTTP/1.1\r\nHost: shop.example\r\n\r\n`;
    const { text, closed } = await rawExchange(port, payload);
    assert.equal(text.match(/HTTP\/1\.1 200 /g)?.length, 3);
    assert.match(text, /HTTP\/1\.1 400 /);
    assert.ok(closed);
    assert.equal(origin.count() - before, 3);
  });

  it('refuses Transfer-Encoding in an HTTP/1.0 request before forwarding anything', async () => {
    const before = origin.count();
    const { text, closed } = await rawExchange(
      port,
      'POST /orders HTTP/1.0\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.ok(closed);
    assert.equal(origin.count(), before);
  });

  it('refuses an HTTP/2.0 request line with 505 before forwarding anything', async () => {
    const before = origin.count();
    const { text, closed } = await rawExchange(port, 'GET /x HTTP/2.0\r\nHost: shop.example\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 (505|400) /);
    assert.ok(closed);
    assert.equal(origin.count(), before);
  });

  it('refuses a transfer coding it does not implement (gzip, chunked) with 501 and closes', async () => {
    const before = origin.count();
    const { text, closed } = await rawExchange(
      port,
      'POST /orders HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' +
        FOLLOWERS,
    );
    assert.match(text, /^HTTP\/1\.1 501 /);
    assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1);
    assert.ok(closed);
    assert.equal(origin.count(), before);
  });

  for (const [method, line] of [
    ['TRACE', `TRACE ${LONG} HTTP/1.1\r\nHost: shop.example\r\n\r\n`],
    ['CONNECT', 'CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n'],
  ] as const) {
    it(`answers ${method} with 405 and an Allow list, forwarding nothing`, async () => {
      const before = origin.count();
      const { text } = await rawExchange(port, line);
      assert.match(text, /^HTTP\/1\.1 405 /);
      assert.match(text, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i);
      assert.match(text, /\r\ncache-status: strata; detail=method-not-allowed\r\n/i);
      assert.equal(origin.count(), before);
    });
  }

  it('routes, keys and forwards one canonical authority and target', async () => {
    const before = origin.count('/canonical');
    const spellings = [
      ['/canonical', 'Shop.Example'],
      ['/canonical', 'shop.example.'],
      ['/canonical', 'shop.example:080'],
      ['/canonical', 'shop.example:80'],
      ['/canonical?', 'shop.example'],
      ['/canonical#top', 'shop.example'],
    ] as const;
    for (const [target, host] of spellings) {
      const { text } = await rawExchange(
        port,
        `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(text, /^HTTP\/1\.1 200 /, `${target} with Host ${host}`);
      assert.match(text, /host=shop\.example url=\/canonical(\r\n|$)/, `${target} with Host ${host}`);
      await edge.node.idle();
    }
    assert.equal(origin.count('/canonical') - before, 1, 'one key for every spelling');
  });

  it('answers an HTTP/1.0 request without Host for the address it reached (RFC 9112 §3.3)', async () => {
    const path = `${HTTP10}?campaign=${'x'.repeat(40)}`;
    const before = origin.count();
    const first = await rawExchange(port, `GET ${path} HTTP/1.0\r\n\r\n`);
    await edge.node.idle();
    assert.match(first.text, /^HTTP\/1\.1 200 /);
    assert.match(first.text, /\r\ncache-status: strata; fwd=miss; fwd-status=200; stored\r\n/i);
    assert.match(
      first.text,
      new RegExp(`host=127\\.0\\.0\\.1:${port} url=${path.replace(/[?.]/g, '\\$&')}$`),
    );
    assert.ok(first.closed, 'HTTP/1.0 without keep-alive: closed after the answer');
    // The same key as an HTTP/1.1 request naming that address, and as an absolute-form 1.0 one.
    const again = await rawExchange(
      port,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(again.text, /\r\ncache-status: strata; hit; ttl=\d+\r\n/i);
    const absolute = await rawExchange(port, `GET http://127.0.0.1:${port}${path} HTTP/1.0\r\n\r\n`);
    assert.match(absolute.text, /\r\ncache-status: strata; hit; ttl=\d+\r\n/i);
    assert.equal(origin.count() - before, 1);
    // A node whose sites name only their hosts has no site for the address: 421.
    const named = await startNode({
      origin: origin.url,
      config: { sites: [{ name: 'shop', hosts: ['shop.example'], origins: ['origin'] }] },
    });
    try {
      const misdirected = await rawExchange(Number(new URL(named.url).port), `GET ${path} HTTP/1.0\r\n\r\n`);
      assert.match(misdirected.text, /^HTTP\/1\.1 421 /);
      // Every answer says how the cache handled it: a refusal, why (README).
      assert.match(misdirected.text, /\r\ncache-status: strata; detail=misdirected\r\n/i);
    } finally {
      await named.close();
    }
    assert.equal(origin.count() - before, 1);
    // HTTP/1.1 still must name its host.
    const eleven = await rawExchange(port, `GET ${path} HTTP/1.1\r\n\r\n`);
    assert.match(eleven.text, /^HTTP\/1\.1 400 /);
    assert.match(eleven.text, /\r\ncache-status: strata; detail=bad-request\r\n/i);
  });
});

/** An account's orders: each request says its step and how long the origin takes over it. */
const ORDERS = `/api/v2/accounts/${'customer-4417-'.repeat(4)}orders/pending-shipments-and-returns`;
/** One value the origin keeps: a POST sets it (taking 200 ms), a GET reads it. */
const BALANCE = `/api/v2/accounts/${'customer-4417-'.repeat(4)}balance/current-statement-and-limits`;

/** The statuses and bodies of a raw HTTP/1.1 exchange, in order (chunked or Content-Length bodies). */
function answers(text: string): Array<{ status: number; body: string }> {
  return text
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .filter((part) => part !== '')
    .map((part) => {
      const split = part.indexOf('\r\n\r\n');
      const head = part.slice(0, split);
      const rest = part.slice(split + 4);
      const body = /\r\ntransfer-encoding: chunked/i.test(head) ? unchunked(rest) : rest;
      return { status: Number(head.slice(9, 12)), body };
    });
}

/** The data of a chunked body (at most 100 chunks). */
function unchunked(text: string): string {
  let data = '';
  let at = 0;
  for (let chunks = 0; chunks < 100; chunks++) {
    const end = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, end), 16);
    if (!(size > 0)) break;
    data += text.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
  return data;
}

describe('pipelined requests with unsafe methods (RFC 9112 §9.3.2)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;
  /** What the origin saw, in order: `>name` when a request arrived, `<name` when it answered. */
  const seen: string[] = [];
  let balance = 'opening';

  /** Answers `METHOD step` after the request's `delay` ms, logging both ends in `seen`. */
  const logged: Route = (req, res) => {
    const query = new URL(req.url ?? '/', 'http://origin.test').searchParams;
    const name = `${req.method} ${query.get('step')}`;
    seen.push(`>${name}`);
    setTimeout(
      () => {
        seen.push(`<${name}`);
        res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' });
        res.end(name);
      },
      Number(query.get('delay') ?? 0),
    );
  };

  before(async () => {
    origin = await startOrigin({
      [ORDERS]: logged,
      [BALANCE]: (req, res) => {
        seen.push(`>${req.method}`);
        const answer = () => {
          seen.push(`<${req.method}`);
          res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' });
          res.end(balance);
        };
        if (req.method !== 'POST') return answer();
        const body = origin.requests.at(-1)!.body.toString();
        setTimeout(() => {
          balance = body;
          answer();
        }, 200);
      },
    });
    edge = await startNode({ origin: origin.url });
    port = Number(new URL(edge.url).port);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('sends pipelined POST, DELETE, POST to the origin one at a time, in the order sent', async () => {
    seen.length = 0;
    const { text, closed } = await rawExchange(
      port,
      `POST ${ORDERS}?step=a&delay=200 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\n\r\nfirst` +
        `DELETE ${ORDERS}?step=b HTTP/1.1\r\nHost: shop.example\r\n\r\n` +
        `POST ${ORDERS}?step=c HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthird`,
    );
    assert.ok(closed);
    assert.deepEqual(answers(text), [
      { status: 200, body: 'POST a' },
      { status: 200, body: 'DELETE b' },
      { status: 200, body: 'POST c' },
    ]);
    assert.deepEqual(seen, ['>POST a', '<POST a', '>DELETE b', '<DELETE b', '>POST c', '<POST c']);
  });

  it('forwards a GET pipelined behind a POST to the same path only once the POST was answered', async () => {
    seen.length = 0;
    balance = 'opening';
    const { text, closed } = await rawExchange(
      port,
      `POST ${BALANCE} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 8\r\n\r\ncredited` +
        `GET ${BALANCE} HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(closed);
    assert.deepEqual(seen, ['>POST', '<POST', '>GET', '<GET']);
    assert.deepEqual(answers(text), [
      { status: 200, body: 'credited' },
      { status: 200, body: 'credited' },
    ]);
  });

  it('works on pipelined GETs together, and on a POST between them alone', async () => {
    seen.length = 0;
    const get = (step: string, last = false) =>
      `GET ${ORDERS}?step=${step}&delay=200 HTTP/1.1\r\nHost: shop.example\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    const { text, closed } = await rawExchange(
      port,
      get('s1') +
        get('s2') +
        `POST ${ORDERS}?step=p&delay=100 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 2\r\n\r\nok` +
        get('s3') +
        get('s4', true),
    );
    assert.ok(closed);
    assert.deepEqual(
      answers(text).map((answer) => answer.body),
      ['GET s1', 'GET s2', 'POST p', 'GET s3', 'GET s4'],
    );
    const at = (event: string) => {
      const index = seen.indexOf(event);
      assert.ok(index >= 0, `${event} in ${seen.join(' ')}`);
      return index;
    };
    const order = seen.join(' ');
    assert.ok(at('>GET s2') < at('<GET s1') && at('>GET s1') < at('<GET s2'), `GETs together: ${order}`);
    assert.ok(at('>POST p') > Math.max(at('<GET s1'), at('<GET s2')), `POST after the GETs: ${order}`);
    assert.ok(Math.min(at('>GET s3'), at('>GET s4')) > at('<POST p'), `GETs after the POST: ${order}`);
    assert.ok(at('>GET s4') < at('<GET s3') && at('>GET s3') < at('<GET s4'), `GETs together: ${order}`);
  });
});
