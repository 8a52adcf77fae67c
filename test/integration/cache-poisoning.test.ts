import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const CACHED = { 'cache-control': 'max-age=600' };
const LONG = `/shop/${'p'.repeat(60)}/${'q'.repeat(40)}/index.html`;
const FORWARDED = `/forwarded/${'r'.repeat(100)}/index.html`;
const HOSTNAME = `/storefront/${'hostname-only-'.repeat(6)}index.html`;

/** An origin that builds its script URL from X-Forwarded-Host, as frameworks behind proxies do. */
function scriptPage(req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers['x-forwarded-host'] ?? req.headers.host;
  res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
  res.end(
    `<html><head><script src="https://${host}/static/app.js"></script></head><body>${'x'.repeat(2000)}</body></html>`,
  );
}

/** The host alone (Express's req.hostname drops the port) in a script URL, and a JSON-escaped link. */
function hostnamePage(req: IncomingMessage, res: ServerResponse): void {
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host).replace(/:\d+$/, '');
  const back = String(req.headers['x-return-to'] ?? '/').replaceAll('/', '\\/');
  res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
  res.end(`<script src="https://${host}/static/app.js"></script><script>var back = "${back}";</script>`);
}

/**
 * An origin that builds its script URL from the first Forwarded element's host (RFC 7239), as
 * Spring's ForwardedHeaderFilter and the `forwarded` packages do.
 */
function forwardedPage(req: IncomingMessage, res: ServerResponse): void {
  const first = String(req.headers.forwarded ?? '').split(',')[0] ?? '';
  const host = /host="?([^";]+)"?/i.exec(first)?.[1] ?? req.headers.host;
  res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
  res.end(`<html><head><script src="https://${host}/static/app.js"></script></head></html>`);
}

/** Reflects an unkeyed custom header deep in a body of about 40 KiB (past the first chunk). */
function themed(req: IncomingMessage, res: ServerResponse): void {
  const theme = req.headers['x-theme'] ?? 'light';
  res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
  res.write(`<html><body>${'y'.repeat(30_000)}`);
  setTimeout(() => res.end(`<link rel=stylesheet href="/themes/${theme}.css"></body></html>`), 5);
}

/** The themed page coded as the client asked (br or gzip), as an origin's compression middleware does. */
function themedCoded(req: IncomingMessage, res: ServerResponse): void {
  const theme = req.headers['x-theme'] ?? 'light';
  const page = Buffer.from(
    `<html><body>${'y'.repeat(30_000)}<link rel=stylesheet href="/themes/${theme}.css"></body></html>`,
  );
  const br = String(req.headers['accept-encoding']).includes('br');
  const body = br ? brotliCompressSync(page) : gzipSync(page);
  res.writeHead(200, {
    ...CACHED,
    'content-type': 'text/html',
    'content-encoding': br ? 'br' : 'gzip',
    vary: 'accept-encoding',
  });
  // In two writes: the coded bytes of the reflection arrive apart.
  res.write(body.subarray(0, body.length >> 1));
  setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
}

async function securityCount(edge: TestNode, rule: string): Promise<number> {
  const text = await edge.node.metrics.registry.getSingleMetricAsString('strata_security_actions_total');
  const match = new RegExp(`rule="${rule}",action="[a-z-]+"} (\\d+)`).exec(text);
  return match ? Number(match[1]) : 0;
}

describe('cache poisoning', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/home': scriptPage,
      [LONG]: scriptPage,
      [FORWARDED]: forwardedPage,
      '/themed': themed,
      '/themed-coded': themedCoded,
      [HOSTNAME]: hostnamePage,
      '/echo-id': (req, res) => {
        res.writeHead(200, {
          ...CACHED,
          'content-type': 'text/plain',
          'x-request-id': String(req.headers['x-request-id']),
        });
        res.end('echoed\n');
      },
      '/plain': respond(200, { ...CACHED, 'content-type': 'text/plain' }, 'plain page\n'),
      '/redirect': (req, res) => {
        res.writeHead(302, {
          ...CACHED,
          location: `https://${req.headers['x-forwarded-host'] ?? req.headers.host}/login`,
        });
        res.end();
      },
      [`/feed/${'regional-offers-'.repeat(6)}jsonp`]: (req, res) => {
        // An older stack that splits parameters on `;` as well as `&` (a JSONP feed).
        const query = (req.url ?? '').split('?')[1] ?? '';
        let callback = 'renderOffers';
        for (const param of query.split(/[&;]/)) {
          const [name, value] = param.split('=');
          if (name === 'callback' && value) callback = decodeURIComponent(value);
        }
        res.writeHead(200, { ...CACHED, 'content-type': 'application/javascript' });
        res.end(`${callback}({"offers":["boots","scarves"]});`);
      },
      '/search': (req, res) => {
        const query = new URL(req.url ?? '/', 'http://x').searchParams.get('utm_content') ?? '';
        res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
        res.end(`<p>campaign: ${query}</p>`);
      },
      [`/proto/${'checkout-step-'.repeat(8)}review`]: (req, res) => {
        // An origin behind a TLS-terminating balancer: plain http is redirected to https.
        if (req.headers['x-forwarded-proto'] === 'http') {
          res.writeHead(301, { ...CACHED, location: `https://shop.example${req.url}` });
          res.end();
          return;
        }
        res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
        res.end('<p>review your order</p>');
      },
      [`/encoded/${'landing-page-'.repeat(8)}spring`]: (req, res) => {
        const host = String(req.headers['x-custom-host'] ?? 'static.shop.example');
        res.writeHead(200, { ...CACHED, 'content-type': 'text/html' });
        res.end(`<script src="//${encodeURI(host)}/a.js"></script>`);
      },
      [`/api/${'catalogue-feed-'.repeat(7)}items.json`]: (req, res) => {
        // A CORS layer that echoes any Origin, without Vary: Origin.
        const origin = req.headers.origin;
        res.writeHead(200, {
          ...CACHED,
          'content-type': 'application/json',
          ...(origin ? { 'access-control-allow-origin': origin } : {}),
        });
        res.end('{"items":[]}');
      },
      // The helper has read the body already: it is the last request seen.
      '/fat': (_req, res) => {
        res.writeHead(200, { ...CACHED, 'content-type': 'text/plain' });
        res.end(`body=${origin.requests.at(-1)!.body.toString()}`);
      },
    });
    edge = await startNode({ origin: origin.url, config: { proxy: { trustedProxies: ['127.0.0.2'] } } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const path of ['/home', LONG]) {
    it(`does not store a page whose script URL reflects a trusted proxy's X-Forwarded-Host (${path.length} chars)`, async () => {
      const poisoned = await edge.get(path, {
        localAddress: '127.0.0.2',
        headers: { 'x-forwarded-host': 'evil.example' },
      });
      assert.equal(poisoned.status, 200);
      assert.match(
        poisoned.text,
        /https:\/\/evil\.example\/static\/app\.js/,
        'the proxy asked for it and gets it',
      );
      assert.doesNotMatch(String(poisoned.headers['cache-status']), /stored/);
      const clean = await edge.get(path, { localAddress: '127.0.0.3' });
      assert.match(String(clean.headers['cache-status']), /^strata; fwd=miss/);
      assert.doesNotMatch(clean.text, /evil/);
      assert.match(clean.text, /src="https:\/\/127\.0\.0\.1:\d+\/static\/app\.js"/);
      const again = await edge.get(path, { localAddress: '127.0.0.3' });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(path), 2);
    });
  }

  it('does not store a page reflecting a claimed host without its port, or a value with its slashes escaped', async () => {
    for (const [query, from, headers] of [
      ['port', '127.0.0.2', { 'x-forwarded-host': 'evil.example:1' }],
      ['json', '127.0.0.3', { 'x-return-to': 'https://evil.example/phish' }],
    ] as const) {
      const path = `${HOSTNAME}?spelling=${query}`;
      const poisoned = await edge.get(path, { localAddress: from, headers });
      assert.match(poisoned.text, /evil\.example/);
      const clean = await edge.get(path, { localAddress: '127.0.0.3' });
      assert.doesNotMatch(clean.text, /evil/, query);
      assert.equal(origin.count(path), 2, `${query}: nothing poisoned was stored`);
    }
  });

  it('does not store a page reflecting the host of a Forwarded chain a trusted proxy passed on', async () => {
    // A proxy that speaks Forwarded only: its chain goes to the origin, host= claim included.
    const poisoned = await edge.get(FORWARDED, {
      localAddress: '127.0.0.2',
      headers: { forwarded: 'for=198.51.100.20;host=evil.example;proto=https' },
    });
    assert.match(poisoned.text, /https:\/\/evil\.example\/static\/app\.js/, 'the proxy asked for it');
    assert.doesNotMatch(String(poisoned.headers['cache-status']), /stored/);
    const clean = await edge.get(FORWARDED, { localAddress: '127.0.0.3' });
    assert.match(String(clean.headers['cache-status']), /^strata; fwd=miss/);
    assert.doesNotMatch(clean.text, /evil/);
    const again = await edge.get(FORWARDED, { localAddress: '127.0.0.3' });
    assert.match(String(again.headers['cache-status']), /^strata; hit/);
    // The node's own element names the host it serves: no claim, stored as usual.
    assert.equal(origin.count(FORWARDED), 2);
  });

  it('never passes on the Forwarded a client wrote through a balancer that extends X-Forwarded-For', async () => {
    const path = `${FORWARDED}?via=xff-balancer&${'campaign=winter-sale&'.repeat(4)}`;
    const forged = await edge.get(path, {
      localAddress: '127.0.0.2',
      headers: {
        'x-forwarded-for': '198.51.100.20',
        'x-forwarded-proto': 'https',
        forwarded: 'for=198.51.100.20;host=evil.example;proto=https',
      },
    });
    // The origin read the first Forwarded element: the balancer's, made from X-Forwarded-For.
    assert.doesNotMatch(forged.text, /evil/);
    assert.match(String(forged.headers['cache-status']), /^strata; fwd=miss/);
    const seen = origin.requests.at(-1)!.headers.forwarded;
    assert.match(
      String(seen),
      /^for=198\.51\.100\.20;host="127\.0\.0\.1:\d+";proto=https, for=127\.0\.0\.2;/,
    );
    const later = await edge.get(path, {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.match(
      String(later.headers['cache-status']),
      /^strata; hit/,
      "stored: the same key (the proxy's https)",
    );
    assert.equal(origin.count(path), 1);
  });

  it("keys a trusted proxy's X-Forwarded-Proto: its http redirect never reaches https clients", async () => {
    const path = `/proto/${'checkout-step-'.repeat(8)}review`;
    const via = (proto: string) => ({ localAddress: '127.0.0.2', headers: { 'x-forwarded-proto': proto } });
    const plain = await edge.get(path, via('http'));
    assert.equal(plain.status, 301);
    assert.match(String(plain.headers['cache-status']), /stored/);
    const secure = await edge.get(path, via('https'));
    assert.equal(secure.status, 200, 'an https client never gets the http redirect');
    assert.equal(secure.text, '<p>review your order</p>');
    assert.equal((await edge.get(path, via('https'))).status, 200);
    assert.match(String((await edge.get(path, via('https'))).headers['cache-status']), /^strata; hit/);
    assert.equal((await edge.get(path, via('http'))).status, 301);
    // An untrusted peer's claim is not read: it is keyed (and forwarded) as the listener's http.
    const untrusted = await edge.get(path, {
      localAddress: '127.0.0.3',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(untrusted.status, 301);
    assert.match(String(untrusted.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(path), 2, 'one fill per scheme');
  });

  it("does not store another site's Origin echoed into Access-Control-Allow-Origin without Vary: Origin", async () => {
    const path = `/api/${'catalogue-feed-'.repeat(7)}items.json`;
    const granted = await edge.get(path, { headers: { origin: 'https://evil.example' } });
    assert.equal(granted.headers['access-control-allow-origin'], 'https://evil.example');
    assert.match(String(granted.headers['cache-status']), /detail=poison-suspect/);
    const plain = await edge.get(path);
    assert.equal(plain.headers['access-control-allow-origin'], undefined, 'no grant for evil.example stored');
    // The page's own origin claims nothing: stored as usual.
    const port = new URL(edge.url).port;
    const own = await edge.get(`${path}?own=1`, { headers: { origin: `http://127.0.0.1:${port}` } });
    assert.match(String(own.headers['cache-status']), /stored/);
  });

  it("keeps a stored response clean when a 304 brings another site's Origin in its fields", async () => {
    const path = `/api/${'catalogue-summary-'.repeat(5)}v2.json`;
    origin.route(path, (req, res) => {
      // A CORS layer answering the revalidation with the caller's Origin, and no Vary: Origin.
      const grant = req.headers.origin ? { 'access-control-allow-origin': req.headers.origin } : {};
      if (req.headers['if-none-match'] === '"cat-1"') {
        res.writeHead(304, { etag: '"cat-1"', 'cache-control': 'max-age=600', ...grant });
        res.end();
        return;
      }
      res.writeHead(200, {
        etag: '"cat-1"',
        'cache-control': 'max-age=600',
        'content-type': 'application/json',
      });
      res.end('{"items":[]}');
    });
    await edge.get(path);
    const attack = await edge.get(path, {
      headers: { origin: 'https://evil.example', 'cache-control': 'no-cache' },
    });
    assert.equal(attack.headers['access-control-allow-origin'], 'https://evil.example');
    assert.match(
      String(attack.headers['cache-status']),
      /fwd=request; fwd-status=304; detail=poison-suspect/,
    );
    const victim = await edge.get(path);
    assert.match(String(victim.headers['cache-status']), /^strata; hit/);
    assert.equal(victim.headers['access-control-allow-origin'], undefined, 'the grant was never stored');
  });

  it('does not store a body reflecting an unkeyed value percent-encoded', async () => {
    const path = `/encoded/${'landing-page-'.repeat(8)}spring`;
    const poisoned = await edge.get(path, { headers: { 'x-custom-host': 'evil.example/x y' } });
    assert.match(poisoned.text, /evil\.example\/x%20y/);
    const clean = await edge.get(path);
    assert.match(String(clean.headers['cache-status']), /^strata; fwd=miss/);
    assert.doesNotMatch(clean.text, /evil/);
    assert.match(String((await edge.get(path)).headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(path), 2);
  });

  it('does not store a response whose headers reflect an unkeyed value (detail=poison-suspect)', async () => {
    const before = await securityCount(edge, 'poison-suspect');
    const res = await edge.get('/redirect', {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-host': 'evil.example' },
    });
    assert.equal(res.status, 302);
    assert.match(String(res.headers['cache-status']), /detail=poison-suspect/);
    const clean = await edge.get('/redirect');
    assert.equal(clean.headers.location?.includes('evil'), false);
    assert.match(String(clean.headers['cache-status']), /fwd=miss; fwd-status=302; stored/);
    assert.equal(origin.count('/redirect'), 2);
    assert.equal(await securityCount(edge, 'poison-suspect'), before + 1);
  });

  it('does not store a body reflecting an unkeyed custom header from any client, past the first chunk', async () => {
    const poisoned = await edge.get('/themed', { headers: { 'x-theme': '"><script>alert(1)</script>' } });
    assert.match(poisoned.text, /<script>alert\(1\)<\/script>/);
    const clean = await edge.get('/themed');
    assert.match(String(clean.headers['cache-status']), /fwd=miss/);
    assert.match(clean.text, /themes\/light\.css/);
    assert.equal(origin.count('/themed'), 2);
  });

  for (const coding of ['gzip', 'br']) {
    it(`does not store a body the origin coded (${coding}) that reflects an unkeyed header, decoded to be scanned`, async () => {
      const path = `/themed-coded?coding=${coding}`;
      const asks = { 'accept-encoding': coding };
      const poisoned = await edge.get(path, {
        headers: { ...asks, 'x-theme': '"><script>alert(1)</script>' },
      });
      assert.equal(poisoned.headers['content-encoding'], coding);
      assert.equal(poisoned.headers['cache-status'], 'strata; fwd=miss; fwd-status=200', 'not said stored');
      const clean = await edge.get(path, { headers: asks });
      assert.match(String(clean.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
      assert.equal(origin.count(path), 2);
      // Coded and not reflected: stored as usual.
      const again = await edge.get(path, { headers: { ...asks, 'x-theme': 'dark-high-contrast' } });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
    });
  }

  it('stores as usual when an unkeyed header is not reflected', async () => {
    const first = await edge.get('/plain', { headers: { 'x-debug-trace': 'abcdef-123456' } });
    assert.equal(first.text, 'plain page\n');
    const second = await edge.get('/plain');
    assert.match(String(second.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/plain'), 1);
  });

  it('stores a response echoing the request id (tracing ids are not claims)', async () => {
    const first = await edge.get('/echo-id', {
      headers: { 'x-request-id': 'req-0f3a9c', traceparent: '00-4bf92f35-00f067aa-01' },
    });
    assert.match(String(first.headers['cache-status']), /stored/);
    const second = await edge.get('/echo-id', { headers: { 'x-request-id': 'req-77d2e1' } });
    assert.match(String(second.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/echo-id'), 1);
  });

  it('keeps a reflected query parameter under its own key: the clean URL is never poisoned', async () => {
    const evil = await edge.get('/search?utm_content=%3Cscript%3Eevil%3C/script%3E');
    assert.match(evil.text, /evil/);
    const clean = await edge.get('/search');
    assert.match(String(clean.headers['cache-status']), /fwd=uri-miss|fwd=miss/);
    assert.equal(clean.text, '<p>campaign: </p>');
    assert.equal(origin.count('/search'), 1, 'the clean URL was fetched on its own');
  });

  /** A node whose site leaves campaign parameters (`utm_*`) out of the key under `path`. */
  const campaignNode = (path: string) =>
    startNode({
      origin: origin.url,
      config: {
        sites: [
          {
            name: 'shop',
            hosts: ['*'],
            origins: ['origin'],
            rules: [{ match: { path }, cacheKey: { query: { exclude: ['utm_*'] } } }],
          },
        ],
      },
    });

  it('does not store a page reflecting a query parameter the cache key leaves out (cacheKey.query.exclude)', async () => {
    const campaigns = await campaignNode('/search');
    try {
      const before = origin.count('/search?q=winter-boots&utm_content=%3Cscript%3Ealert(1)%3C/script%3E');
      const evil = await campaigns.get(
        '/search?q=winter-boots&utm_content=%3Cscript%3Ealert(1)%3C/script%3E',
      );
      assert.match(evil.text, /<script>alert\(1\)<\/script>/);
      // The clean URL and another campaign share the key: neither gets the script.
      const clean = await campaigns.get('/search?q=winter-boots');
      assert.equal(clean.text, '<p>campaign: </p>');
      assert.match(String(clean.headers['cache-status']), /fwd=\w*miss; fwd-status=200; stored/);
      const other = await campaigns.get('/search?q=winter-boots&utm_content=newsletter-december');
      assert.equal(other.text, '<p>campaign: </p>', 'answered from the clean page stored under the key');
      assert.match(String(other.headers['cache-status']), /^strata; hit/);
      assert.equal(
        origin.count('/search?q=winter-boots&utm_content=%3Cscript%3Ealert(1)%3C/script%3E'),
        before + 1,
      );
    } finally {
      await campaigns.close();
    }
  });

  it('does not store a page reflecting a part of a left-out parameter an origin splits on `;`', async () => {
    const feed = `/feed/${'regional-offers-'.repeat(6)}jsonp`;
    const campaigns = await campaignNode('/feed/');
    try {
      const cloaked = `${feed}?region=north&utm_content=spring;callback=stealSessionCookies`;
      const evil = await campaigns.get(cloaked);
      assert.match(evil.text, /^stealSessionCookies\(/);
      assert.doesNotMatch(String(evil.headers['cache-status']), /stored/);
      // The clean URL shares the key: it must get the origin's own callback, from the origin.
      const clean = await campaigns.get(`${feed}?region=north`);
      assert.match(clean.text, /^renderOffers\(/);
      assert.match(String(clean.headers['cache-status']), /fwd=\w*miss; fwd-status=200; stored/);
      const again = await campaigns.get(`${feed}?region=north&utm_content=autumn`);
      assert.match(again.text, /^renderOffers\(/);
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(`${feed}?region=north`), 1);
      assert.equal(origin.count(cloaked), 1);
    } finally {
      await campaigns.close();
    }
  });

  it('passes a GET with a body (fat GET): never answered from cache nor stored', async () => {
    const primed = await edge.get('/fat');
    assert.equal(primed.text, 'body=');
    const fat = await edge.get('/fat', {
      body: 'callback=evil',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '13' },
    });
    assert.equal(fat.status, 200);
    assert.match(String(fat.headers['cache-status']), /fwd=bypass.*detail=fat-request/);
    assert.equal(fat.text, 'body=callback=evil', 'forwarded as it is');
    const after = await edge.get('/fat');
    assert.match(String(after.headers['cache-status']), /^strata; hit/);
    assert.equal(after.text, 'body=', 'the stored response is the clean one');
    assert.equal(origin.count('/fat'), 2);
  });

  it('passes a chunked GET too, its body forwarded, and keeps the stored entry clean', async () => {
    const { text } = await rawExchange(
      Number(new URL(edge.url).port),
      'GET /fat HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\ncb=chunky\r\n0\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /fwd=bypass; fwd-status=200; detail=fat-request/);
    assert.match(text, /\r\nbody=cb=chunky\r\n/);
    assert.equal((await edge.get('/fat')).text, 'body=');
  });
});

describe('cache deception', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const privatePage = respond(
    200,
    { ...CACHED, 'content-type': 'text/html; charset=utf-8' },
    '<h1>Account of alice</h1>',
  );
  const confusing = [
    '/account/x.css',
    '/account;x.css',
    '/account%2Fx.css',
    `/account/settings/${'n'.repeat(90)}/x.css?v=1`,
    '/account/avatar.png',
    '/api/me.json',
  ];

  before(async () => {
    const routes: Record<string, ReturnType<typeof respond>> = {
      '/style.css': respond(200, { ...CACHED, 'content-type': 'text/css' }, 'body{}'),
      '/app.JS': respond(200, { ...CACHED, 'content-type': 'application/javascript; charset=utf-8' }, 'x()'),
    };
    for (const path of confusing) routes[path.split('?')[0]!] = privatePage;
    origin = await startOrigin(routes);
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const path of confusing) {
    it(`does not store ${path.slice(0, 40)}… answered text/html (detail=deception)`, async () => {
      const first = await edge.get(path);
      assert.equal(first.status, 200);
      assert.match(String(first.headers['cache-status']), /detail=deception/);
      const second = await edge.get(path);
      assert.match(String(second.headers['cache-status']), /fwd=miss/);
      assert.equal(origin.count(path), 2);
    });
  }

  it('stores /style.css answered text/css and /app.JS answered application/javascript', async () => {
    for (const path of ['/style.css', '/app.JS']) {
      await edge.get(path);
      const second = await edge.get(path);
      assert.match(String(second.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(path), 1);
    }
  });
});
