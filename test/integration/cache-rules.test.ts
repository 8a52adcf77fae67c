import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** Real-length URLs: a build hash, a locale, tracking parameters. */
const ASSET =
  '/static/build/5f3c9a1e7b2d4c6a8e0f1b3d5c7a9e2f/js/vendors-node_modules_react-dom_index.chunk.min.js';
const LISTING =
  '/api/catalog/v2/products?category=outdoor-furniture&page=3&per_page=48&sort=price_asc&currency=EUR';

/** Answers `body N` for the Nth request of the route (whatever its query), so each fetch is told apart. */
function counted(headers: Record<string, string | string[]>, status = 200): Route {
  let hits = 0;
  return (_req, res) => {
    hits++;
    res.writeHead(status, headers);
    res.end(`body ${hits}`);
  };
}

describe('site cache rules', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const lines: Array<Record<string, unknown>> = [];
  /** Requests that reached the origin for this path, whatever their query. */
  const reached = (path: string) => origin.requests.filter((r) => r.path.split('?')[0] === path).length;

  before(async () => {
    origin = await startOrigin({
      [ASSET.split('?')[0]!]: counted({ 'content-type': 'application/javascript' }),
      '/status/404': counted({}, 404),
      '/status/403': counted({}, 403),
      '/status/503': counted({}, 503),
      '/clamp/min': counted({ 'cache-control': 'max-age=5' }),
      '/clamp/max': counted({ 'cache-control': 'max-age=3600' }),
      '/grace/swr': counted({ 'cache-control': 'max-age=10' }),
      '/grace/sie': (_req, res, hit) => {
        res.writeHead(hit === 1 ? 200 : 500, { 'cache-control': 'max-age=10' });
        res.end(`sie ${hit}`);
      },
      '/browser/page': counted({ 'cache-control': 'max-age=3600' }),
      '/ignore/private': counted({ 'cache-control': 'private, no-store', expires: '0' }),
      '/ignore/cookie': counted({
        'cache-control': 'max-age=600',
        'set-cookie': 'sid=abc123; Path=/; HttpOnly',
      }),
      '/cookie/untouched': counted({ 'cache-control': 'max-age=600', 'set-cookie': 'sid=abc123; Path=/' }),
      '/ignore/vary': counted({ 'cache-control': 'max-age=600', vary: 'User-Agent' }),
      '/account/overview': counted({ 'cache-control': 'max-age=600' }),
      '/news/today': counted({ 'cache-control': 'max-age=600' }),
      '/api/catalog/v2/products': counted({ 'cache-control': 'max-age=600' }),
      '/search': counted({ 'cache-control': 'max-age=600' }),
      '/i18n/home': counted({ 'cache-control': 'max-age=600' }),
      '/shop/cart-summary': counted({ 'cache-control': 'max-age=600' }),
      '/geo/landing': counted({ 'cache-control': 'max-age=600' }),
      '/rewrite/echo': (req, res) => {
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          'x-backend': 'web-3.eu-west.internal',
          'x-runtime': '0.042',
          'x-frame-options': 'SAMEORIGIN',
        });
        res.end(
          JSON.stringify({
            tenant: req.headers['x-tenant'],
            traced: req.headers['x-trace'] === 'client, edge',
            cookie: req.headers.cookie ?? 'none',
          }),
        );
      },
      '/reload/page': counted({ 'cache-control': 'max-age=600' }),
      '/honor/page': counted({ 'cache-control': 'max-age=600' }),
      '/v3/orders/export': counted({ 'cache-control': 'max-age=600' }),
      '/profile/settings': counted({ 'cache-control': 'max-age=600' }),
    });
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info', access: true },
        origins: [{ name: 'origin', url: origin.url, region: 'eu' }],
        node: { region: 'eu' },
        geo: { networks: [{ cidr: '127.0.0.2/32', region: 'eu' }] },
        sites: [
          {
            name: 'app',
            hosts: ['*'],
            origins: ['origin'],
            clientCacheControl: 'ignore',
            rules: [
              { name: 'static', match: { path: '/static/*' }, ttl: '10m' },
              { name: 'errors', match: { path: '/status/' }, statusTtl: { 404: '1m', 403: 30, '5xx': 0 } },
              { name: 'at-least', match: { path: '/clamp/min' }, minTtl: '1m' },
              { name: 'at-most', match: { path: '/clamp/max' }, maxTtl: '10s' },
              { name: 'grace', match: { path: '/grace/' }, swr: '1m', sie: '1h' },
              { name: 'browser', match: { path: '/browser/' }, browserTtl: 30 },
              {
                name: 'forced',
                match: { path: '/ignore/private' },
                ignore: ['cache-control', 'expires'],
                ttl: '5m',
              },
              { name: 'no-cookie', match: { path: '/ignore/cookie' }, ignore: ['set-cookie'] },
              { name: 'no-vary', match: { path: '/ignore/vary' }, ignore: ['vary'] },
              { name: 'pass-session', match: { cookie: 'session' }, action: 'pass' },
              { name: 'refresh', match: { header: { 'x-refresh': '1' } }, action: 'bypass' },
              {
                name: 'api-key',
                match: { path: '/api/' },
                cacheKey: { query: { exclude: ['utm_*', 'fbclid'], sort: true } },
              },
              { name: 'search-key', match: { path: '/search' }, cacheKey: { query: { include: ['q'] } } },
              { name: 'lang', match: { path: '/i18n/' }, cacheKey: { headers: ['accept-language'] } },
              {
                name: 'currency',
                match: { path: '/shop/' },
                cacheKey: { query: { ignore: true }, cookies: ['currency'] },
              },
              { name: 'by-region', match: { path: '/geo/' }, cacheKey: { region: true } },
              {
                name: 'rewrite',
                match: { path: '/rewrite/' },
                headers: {
                  request: { set: { 'X-Tenant': 'acme' }, append: { 'X-Trace': 'edge' }, remove: ['cookie'] },
                  response: {
                    set: { 'X-Frame-Options': 'DENY' },
                    append: { 'X-Served-By': 'strata-rules' },
                    remove: ['x-backend', 'x-runtime'],
                  },
                },
              },
              { name: 'honor-here', match: { path: '/honor/' }, clientCacheControl: 'honor' },
              { match: { path: '~^/v[0-9]+/orders/', method: ['GET', 'HEAD'] }, action: 'pass' },
            ],
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('stores a response the origin gave no freshness for the rule TTL, and names the rule', async () => {
    const first = await edge.get(ASSET);
    assert.equal(first.status, 200);
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored; detail=static');
    clock.advance(599);
    const hit = await edge.get(ASSET);
    assert.equal(hit.text, 'body 1');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=1; detail=static');
    clock.advance(2);
    const stale = await edge.get(ASSET);
    assert.equal(stale.text, 'body 2');
    assert.equal(reached(ASSET), 2);
  });

  it('gives each status its TTL (404 1m, 403 30 s stored though 403 is not by default, 5xx 0 never)', async () => {
    await edge.get('/status/404');
    const notFound = await edge.get('/status/404');
    assert.equal(notFound.status, 404);
    assert.equal(notFound.headers['cache-status'], 'strata; hit; ttl=60; detail=errors');
    await edge.get('/status/403');
    clock.advance(29);
    const forbidden = await edge.get('/status/403');
    assert.equal(forbidden.headers['cache-status'], 'strata; hit; ttl=1; detail=errors');
    const failed = await edge.get('/status/503');
    assert.equal(
      failed.headers['cache-status'],
      'strata; fwd=miss; fwd-status=503; detail="rule-ttl-zero errors"',
    );
    await edge.get('/status/503');
    assert.deepEqual([reached('/status/404'), reached('/status/403'), reached('/status/503')], [1, 1, 2]);
  });

  it('clamps the origin lifetime: minTtl raises max-age=5, maxTtl cuts max-age=3600', async () => {
    await edge.get('/clamp/min');
    clock.advance(30);
    const min = await edge.get('/clamp/min');
    assert.equal(min.headers['cache-status'], 'strata; hit; ttl=30; detail=at-least');
    await edge.get('/clamp/max');
    clock.advance(11);
    const max = await edge.get('/clamp/max');
    assert.equal(max.text, 'body 2');
    assert.equal(max.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored; detail=at-most');
    assert.deepEqual([reached('/clamp/min'), reached('/clamp/max')], [1, 2]);
  });

  it('serves stale while revalidating and on origin errors within the rule windows', async () => {
    await edge.get('/grace/swr');
    clock.advance(30);
    const swr = await edge.get('/grace/swr');
    assert.equal(swr.text, 'body 1');
    assert.match(String(swr.headers['cache-status']), /^strata; hit; ttl=-20; detail=grace$/);
    assert.equal(reached('/grace/swr'), 2); // the background revalidation
    await edge.get('/grace/sie');
    clock.advance(600);
    const sie = await edge.get('/grace/sie');
    assert.equal(sie.status, 200);
    assert.equal(sie.text, 'sie 1');
    assert.match(
      String(sie.headers['cache-status']),
      /fwd=stale; fwd-status=500; detail="stale-if-error grace"/,
    );
    assert.equal(reached('/grace/sie'), 2);
  });

  it('sends the browser its own TTL while the edge keeps the origin one', async () => {
    const first = await edge.get('/browser/page');
    assert.equal(first.headers['cache-control'], 'max-age=30');
    clock.advance(600);
    const hit = await edge.get('/browser/page');
    assert.equal(hit.headers['cache-control'], 'max-age=30');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=3000; detail=browser');
    assert.equal(reached('/browser/page'), 1);
  });

  it("ignores the origin's Cache-Control and Expires (proxy_ignore_headers) and stores for the rule TTL", async () => {
    await edge.get('/ignore/private');
    const hit = await edge.get('/ignore/private');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=300; detail=forced');
    assert.equal(hit.headers['cache-control'], 'private, no-store');
    assert.equal(reached('/ignore/private'), 1);
  });

  it('stores a Set-Cookie response it is told to ignore the field of, and delivers the cookie to nobody', async () => {
    const first = await edge.get('/ignore/cookie');
    assert.equal(first.headers['set-cookie'], undefined);
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored; detail=no-cookie');
    const hit = await edge.get('/ignore/cookie');
    assert.equal(hit.headers['set-cookie'], undefined);
    assert.equal(hit.text, 'body 1');
    assert.equal(reached('/ignore/cookie'), 1);
    // Without the rule, the same response is not stored and the cookie reaches its client only.
    const other = await edge.get('/cookie/untouched');
    assert.deepEqual(other.headers['set-cookie'], ['sid=abc123; Path=/']);
    await edge.get('/cookie/untouched');
    assert.equal(reached('/cookie/untouched'), 2);
  });

  it("ignores the origin's Vary: one entry for every User-Agent", async () => {
    await edge.get('/ignore/vary', {
      headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' },
    });
    const other = await edge.get('/ignore/vary', { headers: { 'user-agent': 'curl/8.5.0' } });
    assert.equal(other.headers['cache-status'], 'strata; hit; ttl=600; detail=no-vary');
    assert.equal(reached('/ignore/vary'), 1);
  });

  it('passes a request with a session cookie: never answered from the cache, never stored', async () => {
    await edge.get('/account/overview');
    const session = { cookie: 'theme=dark; session=8f14e45fceea167a5a36dedd4bea2543' };
    const passed = await edge.get('/account/overview', { headers: session });
    assert.equal(passed.text, 'body 2');
    assert.equal(passed.headers['cache-status'], 'strata; fwd=bypass; fwd-status=200; detail=pass-session');
    await edge.get('/account/overview', { headers: session });
    const anonymous = await edge.get('/account/overview');
    assert.equal(anonymous.text, 'body 1');
    assert.equal(anonymous.headers['cache-status'], 'strata; hit; ttl=600');
    assert.equal(reached('/account/overview'), 3);
  });

  it('bypasses the cache for a request with the header, and stores what it fetched (proxy_cache_bypass)', async () => {
    await edge.get('/news/today');
    const bypass = await edge.get('/news/today', { headers: { 'x-refresh': '1' } });
    assert.equal(bypass.text, 'body 2');
    assert.equal(
      bypass.headers['cache-status'],
      'strata; fwd=bypass; fwd-status=200; stored; detail=refresh',
    );
    const next = await edge.get('/news/today');
    assert.equal(next.text, 'body 2');
    assert.equal(next.headers['cache-status'], 'strata; hit; ttl=600');
    assert.equal(reached('/news/today'), 2);
  });

  it('ignores client reloads on this site (max-age=0, no-cache, Pragma) but honors them where a rule says so', async () => {
    await edge.get('/reload/page');
    const reloads: Record<string, string>[] = [
      { 'cache-control': 'max-age=0' },
      { 'cache-control': 'no-cache' },
      { pragma: 'no-cache' },
    ];
    for (const headers of reloads) {
      const reload = await edge.get('/reload/page', { headers });
      assert.equal(reload.headers['cache-status'], 'strata; hit; ttl=600');
    }
    assert.equal(reached('/reload/page'), 1);
    await edge.get('/honor/page');
    const honored = await edge.get('/honor/page', { headers: { 'cache-control': 'no-cache' } });
    assert.equal(
      honored.headers['cache-status'],
      'strata; fwd=request; fwd-status=200; stored; detail=honor-here',
    );
    assert.equal(reached('/honor/page'), 2);
  });

  it('keys without tracking parameters, sorted: one entry for every utm_* and parameter order', async () => {
    const first = await edge.get(
      `${LISTING}&utm_source=newsletter&utm_campaign=spring-sale-2026&fbclid=IwAR3x`,
    );
    // Values of parameters left out of the key are looked for in the body as it streams: whether
    // it is stored is known only at its end, so the head does not say `stored` (docs/security.md).
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=api-key');
    const reordered = await edge.get(
      '/api/catalog/v2/products?utm_medium=email&currency=EUR&sort=price_asc&per_page=48&page=3&category=outdoor-furniture',
    );
    assert.equal(reordered.headers['cache-status'], 'strata; hit; ttl=600; detail=api-key');
    const otherPage = await edge.get(LISTING.replace('page=3', 'page=4'));
    assert.equal(otherPage.text, 'body 2');
    // The origin is asked with the query as the client sent it.
    assert.ok(origin.requests.some((r) => r.path.includes('utm_source=newsletter')));
    assert.equal(reached('/api/catalog/v2/products'), 2);
  });

  it('keys on the included parameters only', async () => {
    await edge.get('/search?q=garden+chairs&session_id=1&ref=home');
    const hit = await edge.get('/search?ref=footer&q=garden+chairs');
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=600; detail=search-key');
    await edge.get('/search?q=tables');
    assert.equal(reached('/search'), 2);
  });

  it('adds a request header, a cookie, or the client region to the key', async () => {
    await edge.get('/i18n/home', { headers: { 'accept-language': 'de-DE' } });
    const de = await edge.get('/i18n/home', { headers: { 'accept-language': 'de-DE' } });
    const fr = await edge.get('/i18n/home', { headers: { 'accept-language': 'fr-FR' } });
    assert.deepEqual([de.text, fr.text], ['body 1', 'body 2']);
    await edge.get('/shop/cart-summary?ts=1', { headers: { cookie: 'currency=EUR' } });
    const eur = await edge.get('/shop/cart-summary?ts=2', { headers: { cookie: 'a=b; currency=EUR' } });
    const usd = await edge.get('/shop/cart-summary', { headers: { cookie: 'currency=USD' } });
    assert.deepEqual([eur.text, usd.text], ['body 1', 'body 2']);
    await edge.get('/geo/landing', { localAddress: '127.0.0.2' });
    const eu = await edge.get('/geo/landing', { localAddress: '127.0.0.2' });
    const unknown = await edge.get('/geo/landing');
    assert.deepEqual([eu.text, unknown.text], ['body 1', 'body 2']);
    assert.deepEqual(
      [reached('/i18n/home'), reached('/shop/cart-summary'), reached('/geo/landing')],
      [2, 2, 2],
    );
  });

  it('rewrites the origin request and the client response, hiding origin headers, on misses and hits', async () => {
    for (const expected of ['miss', 'hit']) {
      const res = await edge.get('/rewrite/echo', { headers: { cookie: 'tracking=1', 'x-trace': 'client' } });
      assert.deepEqual(JSON.parse(res.text), { tenant: 'acme', traced: true, cookie: 'none' });
      assert.equal(res.headers['x-backend'], undefined, expected);
      assert.equal(res.headers['x-runtime'], undefined);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['x-served-by'], 'strata-rules');
    }
    assert.equal(reached('/rewrite/echo'), 1);
  });

  it('matches a regex path and a method list, with a default rule name', async () => {
    await edge.get('/v3/orders/export?format=csv&from=2026-01-01&to=2026-12-31');
    const second = await edge.get('/v3/orders/export?format=csv&from=2026-01-01&to=2026-12-31');
    assert.equal(second.headers['cache-status'], 'strata; fwd=bypass; fwd-status=200; detail=rule-19');
    assert.equal(reached('/v3/orders/export'), 2);
  });

  it('still invalidates the stored URL after an unsafe method that a pass rule matches', async () => {
    await edge.get('/profile/settings');
    const session = { cookie: 'session=8f14e45fceea167a5a36dedd4bea2543' };
    const post = await edge.get('/profile/settings', {
      method: 'POST',
      headers: session,
      body: 'theme=dark',
    });
    assert.equal(post.headers['cache-status'], 'strata; fwd=method; fwd-status=200; detail=pass-session');
    const after = await edge.get('/profile/settings');
    assert.equal(after.text, 'body 3');
    assert.equal(reached('/profile/settings'), 3);
  });

  it('invalidates every keyed copy of the URL after an unsafe method, not only the one it was keyed as', async () => {
    // RFC 9111 §4.4: the target URI is invalidated; a cacheKey rule keeps one copy of it per
    // cookie value (and one without), and a PUT from one currency leaves none of them fresh.
    const path = `/shop/products/${'garden-lounge-chair-teak-'.repeat(3)}set-of-2?variant=natural`;
    assert.ok(path.length > 100);
    origin.route(path.split('?')[0]!, (req, res) => {
      res.writeHead(req.method === 'PUT' ? 204 : 200, { 'cache-control': 'max-age=300' });
      res.end(req.method === 'PUT' ? undefined : `price list ${reached(path.split('?')[0]!)}`);
    });
    const copies: Array<Record<string, string>> = [
      { cookie: 'currency=EUR' },
      { cookie: 'currency=USD' },
      {},
    ];
    for (const headers of copies) await edge.get(path, { headers });
    for (const headers of copies)
      assert.match(String((await edge.get(path, { headers })).headers['cache-status']), /^strata; hit/);
    const put = await edge.get(path, {
      method: 'PUT',
      headers: { cookie: 'currency=EUR' },
      body: 'price=499',
    });
    assert.equal(put.status, 204);
    for (const headers of copies) {
      const after = await edge.get(path, { headers });
      assert.match(
        String(after.headers['cache-status']),
        /^strata; fwd=stale; fwd-status=200\b/,
        JSON.stringify(headers),
      );
    }
    assert.equal(reached(path.split('?')[0]!), 7);
  });

  it('does not store a keyed copy whose fetch began before an unsafe method on the URL', async () => {
    const path = `/shop/products/${'outdoor-dining-table-acacia-'.repeat(3)}extendable?variant=oiled`;
    const bare = path.split('?')[0]!;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let asked: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      asked = resolve;
    });
    origin.route(bare, async (req, res) => {
      if (req.method === 'PUT') {
        res.writeHead(204, { 'cache-control': 'max-age=300' });
        res.end();
        return;
      }
      const body = `price list ${reached(bare)}`;
      if (reached(bare) === 1) {
        asked();
        await held;
      }
      res.writeHead(200, { 'cache-control': 'max-age=300' });
      res.end(body);
    });
    const usd = { cookie: 'currency=USD' };
    const before = request(`${edge.url}${path}`, { headers: usd });
    await arrived;
    // Not edge.get: it waits for the node to be idle, and the GET above is still running.
    const put = await request(`${edge.url}${path}`, {
      method: 'PUT',
      headers: { cookie: 'currency=EUR' },
      body: 'price=549',
    });
    assert.equal(put.status, 204);
    release();
    assert.equal((await before).text, 'price list 1', 'its client gets what it asked for');
    await edge.node.idle();
    const after = await edge.get(path, { headers: usd });
    assert.doesNotMatch(String(after.headers['cache-status']), /hit/, 'fetched before the PUT: never stored');
    assert.equal(after.text, 'price list 3');
    assert.equal(reached(bare), 3);
  });

  it('names the deciding rule in the access log', async () => {
    const line = lines.filter((l) => l.msg === 'request completed' && l.path === ASSET).at(-1);
    assert.equal(line?.rule, 'static');
    const plain = lines.filter((l) => l.msg === 'request completed' && l.path === '/cookie/untouched').at(-1);
    assert.equal(plain?.rule, undefined);
  });
});
