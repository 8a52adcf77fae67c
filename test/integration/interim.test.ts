import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const LONG = `/pages/${'early-hints-'.repeat(6)}/article.html?campaign=${'x'.repeat(40)}`;
const PRELOAD = '</style.css>; rel=preload; as=style';

interface Interim {
  status: number;
  headers: IncomingHttpHeaders;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  interim: Interim[];
}

/** A GET that records the interim responses it receives before the final one. */
function get(url: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const interim: Interim[] = [];
    const req = httpRequest(url, { method, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
          interim,
        }),
      );
      res.on('error', reject);
    });
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('interim (1xx) responses from the origin (RFC 9110 §15.2, RFC 8297)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    const hinted = (cacheControl: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeEarlyHints({ link: PRELOAD, 'x-hint': 'early' });
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': cacheControl, 'content-type': 'text/plain' });
        res.end('page');
      }, 50);
    };
    origin = await startOrigin({
      [LONG]: hinted('max-age=60'),
      '/h': hinted('max-age=60'),
      '/post': hinted('no-store'),
      '/multi': (_req, res) => {
        res.writeEarlyHints({ link: ['</a.css>; rel=preload; as=style', '</b.js>; rel=preload; as=script'] });
        setTimeout(() => res.writeHead(200, { 'cache-control': 'no-store' }).end('multi'), 50);
      },
      '/collapsed': (_req, res) => {
        res.writeEarlyHints({ link: PRELOAD });
        setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('shared'), 400);
      },
      '/leaky': (_req, res) => {
        res.writeEarlyHints({
          link: PRELOAD,
          server: 'secret-backend/1.2.3',
          'x-powered-by': 'PHP/5.3',
          'set-cookie': 'early=LEAK',
        });
        for (let i = 0; i < 40; i++) res.writeEarlyHints({ link: `</more-${i}.css>; rel=preload; as=style` });
        setTimeout(() => res.writeHead(200, { 'cache-control': 'no-store' }).end('leaky'), 50);
      },
      '/processing': (_req, res) => {
        res.writeProcessing();
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'max-age=60' });
          res.end('slow');
        }, 50);
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });

  after(async () => {
    await edge?.close();
    await origin?.close();
  });

  for (const path of ['/h', LONG]) {
    it(`forwards a 103 Early Hints before the final response, and neither stores it nor merges its fields (${path.length} characters)`, async () => {
      const first = await get(`${edge.url}${path}`);
      assert.equal(first.status, 200);
      assert.equal(first.text, 'page');
      assert.deepEqual(
        first.interim.map((i) => i.status),
        [103],
      );
      assert.equal(first.interim[0]!.headers.link, PRELOAD);
      assert.equal(first.interim[0]!.headers['x-hint'], 'early');
      assert.equal(first.headers['x-hint'], undefined);
      await edge.node.idle();

      const second = await get(`${edge.url}${path}`);
      assert.equal(second.status, 200);
      assert.equal(second.text, 'page');
      assert.match(String(second.headers['cache-status']), /hit/);
      assert.deepEqual(second.interim, []);
      assert.equal(second.headers['x-hint'], undefined);
      assert.equal(second.headers.link, undefined);
      assert.equal(origin.count(path), 1);
    });
  }

  it('forwards a 103 on a request passed to the origin (POST)', async () => {
    const answer = await get(`${edge.url}/post`, 'POST');
    assert.equal(answer.status, 200);
    assert.deepEqual(
      answer.interim.map((i) => i.status),
      [103],
    );
    assert.equal(origin.count('/post'), 1);
  });

  it('hides from a 103 what it hides from every response, never passes a Set-Cookie in one, and forwards at most 10', async () => {
    const answer = await get(`${edge.url}/leaky`);
    assert.equal(answer.text, 'leaky');
    assert.equal(answer.interim.length, 10, '41 hints from the origin, 10 forwarded');
    const first = answer.interim[0]!.headers;
    assert.equal(first.link, PRELOAD);
    assert.equal(first.server, undefined);
    assert.equal(first['x-powered-by'], undefined);
    assert.equal(first['set-cookie'], undefined);
  });

  it('forwards every Link member of a 103 that lists several on one line', async () => {
    const answer = await get(`${edge.url}/multi`);
    assert.equal(answer.text, 'multi');
    assert.deepEqual(
      answer.interim.map((i) => i.status),
      [103],
    );
    assert.equal(
      answer.interim[0]!.headers.link,
      '</a.css>; rel=preload; as=style, </b.js>; rel=preload; as=script',
    );
  });

  it("gives the origin's 103 to the leader's client only; a collapsed follower gets the shared final response", async () => {
    const leader = get(`${edge.url}/collapsed`);
    // The follower arrives once the leader's request is at the origin (its 103 already sent).
    assert.ok(await until(() => origin.count('/collapsed') === 1, 3000));
    const follower = await get(`${edge.url}/collapsed`);
    const first = await leader;
    assert.equal(first.text, 'shared');
    assert.equal(follower.text, 'shared');
    assert.deepEqual(
      first.interim.map((i) => i.status),
      [103],
    );
    assert.deepEqual(follower.interim, []);
    assert.match(String(follower.headers['cache-status']), /collapsed|hit/);
    assert.equal(origin.count('/collapsed'), 1);
  });

  it('forwards a 102 Processing to an HTTP/1.1 client, and stores only the final response', async () => {
    const first = await get(`${edge.url}/processing`);
    assert.equal(first.status, 200);
    assert.equal(first.text, 'slow');
    assert.deepEqual(
      first.interim.map((i) => i.status),
      [102],
    );
    await edge.node.idle();
    const second = await get(`${edge.url}/processing`);
    assert.equal(second.text, 'slow');
    assert.deepEqual(second.interim, []);
    assert.equal(origin.count('/processing'), 1);
  });

  it('sends no interim response to an HTTP/1.0 client', async () => {
    const before = origin.count(`${LONG}&v=10`);
    origin.route(`${LONG}&v=10`, (_req, res) => {
      res.writeEarlyHints({ link: PRELOAD });
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '4' });
        res.end('page');
      }, 50);
    });
    const raw = await new Promise<string>((resolve, reject) => {
      const url = new URL(edge.url);
      const socket = connect(Number(url.port), url.hostname);
      const chunks: Buffer[] = [];
      socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.write(`GET ${LONG}&v=10 HTTP/1.0\r\nHost: example.test\r\n\r\n`);
    });
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(raw, /103/);
    assert.ok(raw.endsWith('page'));
    assert.equal(origin.count(`${LONG}&v=10`), before + 1);
  });
});

describe('Early Hints to an HTTP/2 client', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('default', ['a.test', 'localhost']);
    origin = await startOrigin({
      [LONG]: (_req, res) => {
        res.writeEarlyHints({ link: PRELOAD });
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'max-age=60' });
          res.end('h2 page');
        }, 50);
      },
    });
    edge = await startNode({
      origin: origin.url,
      config: { listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }] },
    });
  });

  after(async () => {
    await edge?.close();
    await origin?.close();
    fixtures?.remove();
  });

  /** One HTTP/2 GET recording the 1xx header blocks it receives. */
  function h2get(path: string): Promise<{ status: number; body: string; interim: Interim[] }> {
    return new Promise((resolve, reject) => {
      const session = h2connect(`https://${edge.node.addresses[0]}`, {
        ca: fixtures.ca,
        servername: 'a.test',
      });
      session.on('error', reject);
      const stream = session.request({ ':path': path, ':authority': 'a.test' });
      const interim: Interim[] = [];
      let status = 0;
      const chunks: Buffer[] = [];
      stream.setTimeout(5000, () => stream.close());
      stream.on('headers', (h) =>
        interim.push({ status: Number(h[':status']), headers: h as IncomingHttpHeaders }),
      );
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        session.close();
        resolve({ status, body: Buffer.concat(chunks).toString(), interim });
      });
      stream.on('error', reject);
      stream.end();
    });
  }

  it("forwards the origin's 103 to an HTTP/2 client, and the hit that follows has none", async () => {
    const first = await h2get(LONG);
    assert.equal(first.status, 200);
    assert.equal(first.body, 'h2 page');
    assert.deepEqual(
      first.interim.map((i) => i.status),
      [103],
    );
    assert.equal(first.interim[0]!.headers.link, PRELOAD);
    await edge.node.idle();
    const second = await h2get(LONG);
    assert.equal(second.body, 'h2 page');
    assert.deepEqual(second.interim, []);
    assert.equal(origin.count(LONG), 1);
  });
});

describe("replaying a stored page's Link hints as 103 (site option earlyHints, RFC 8297)", () => {
  let origin: TestOrigin;
  let hinting: TestNode;
  let plain: TestNode;
  const clock = createClock();
  const LINK =
    '</app.css>; rel=preload; as=style, </hero.jpg>; rel="preload"; as=image, </terms>; rel=terms-of-service, <https://cdn.example>; rel=preconnect';
  const HINTS =
    '</app.css>; rel=preload; as=style, </hero.jpg>; rel="preload"; as=image, <https://cdn.example>; rel=preconnect';

  before(async () => {
    origin = await startOrigin({
      [LONG]: (req, res) => {
        const headers = { 'cache-control': 'max-age=10', etag: '"v1"', link: LINK };
        setTimeout(
          () => {
            if (req.headers['if-none-match'] === '"v1"') res.writeHead(304, headers).end();
            else res.writeHead(200, headers).end('page');
          },
          req.headers['if-none-match'] ? 100 : 0,
        );
      },
    });
    const site = { name: 'default', hosts: ['*'], origins: ['origin'] };
    hinting = await startNode({
      origin: origin.url,
      now: clock.now,
      config: { sites: [{ ...site, earlyHints: true }] },
    });
    plain = await startNode({ origin: origin.url, now: clock.now });
  });

  after(async () => {
    await hinting?.close();
    await plain?.close();
    await origin?.close();
  });

  it('sends the stored preload and preconnect hints while a stale page is revalidated, and none on a fresh hit', async () => {
    const first = await get(`${hinting.url}${LONG}`);
    assert.deepEqual(first.interim, []);
    await hinting.node.idle();
    const hit = await get(`${hinting.url}${LONG}`);
    assert.deepEqual(hit.interim, []);
    clock.advance(20);
    const revalidated = await get(`${hinting.url}${LONG}`);
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, 'page');
    assert.deepEqual(
      revalidated.interim.map((i) => i.status),
      [103],
    );
    assert.equal(revalidated.interim[0]!.headers.link, HINTS);
    assert.equal(revalidated.headers.link, LINK);
    assert.match(String(revalidated.headers['cache-status']), /fwd=stale/);
    assert.equal(origin.requests.filter((r) => r.headers['if-none-match'] === '"v1"').length, 1);
  });

  it('sends nothing early for a site without the option', async () => {
    await get(`${plain.url}${LONG}`);
    await plain.node.idle();
    clock.advance(20);
    const revalidated = await get(`${plain.url}${LONG}`);
    assert.equal(revalidated.text, 'page');
    assert.deepEqual(revalidated.interim, []);
  });
});

describe('an origin that sends interim responses and never a final one', () => {
  const PATH = `/reports/${'quarterly-export-'.repeat(6)}generate?format=csv`;
  let origin: TestOrigin;
  let edge: TestNode;
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    origin = await startOrigin({
      // A 103 every 200 ms, for ever: each one started undici's response timeout again.
      [PATH]: (_req, res) => {
        const timer = setInterval(() => {
          if (res.destroyed) clearInterval(timer);
          else res.writeEarlyHints({ link: PRELOAD });
        }, 200);
        timers.push(timer);
      },
    });
    edge = await startNode({
      origin: origin.url,
      config: {
        origins: [{ name: 'origin', url: origin.url, connectTimeout: 2000, responseTimeout: 1000 }],
      },
    });
  });

  after(async () => {
    for (const timer of timers) clearInterval(timer);
    await edge?.close();
    await origin?.close();
  });

  it('answers 504 once origins[].responseTimeout has passed since the first of them', async () => {
    const started = performance.now();
    const answer = await get(`${edge.url}${PATH}`);
    const ms = performance.now() - started;
    assert.equal(answer.status, 504);
    assert.match(String(answer.headers['proxy-status']), /error=http_response_timeout/);
    assert.ok(answer.interim.length >= 1 && answer.interim.every((i) => i.status === 103));
    assert.ok(ms < 2500, `answered after ${Math.round(ms)} ms`);
    assert.equal(origin.count(PATH), 1);
  });
});
