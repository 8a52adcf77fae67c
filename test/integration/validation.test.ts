import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

/** An origin route that answers 304 to a matching If-None-Match. */
function validated(cacheControl: string, body: string, extra: Record<string, string> = {}): Route {
  return (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"', 'cache-control': cacheControl, ...extra });
      res.end();
      return;
    }
    res.writeHead(200, { etag: '"v1"', 'cache-control': cacheControl, 'content-type': 'text/plain' });
    res.end(body);
  };
}

describe('validation and reuse', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  let failing = false;
  const extensionPath = `/reports/${'quarterly-'.repeat(8)}summary.csv?format=csv&download=1`;

  before(async () => {
    origin = await startOrigin({
      '/etag': validated('max-age=10', 'body-v1', { 'x-refreshed': 'yes' }),
      [extensionPath]: respond(200, { 'cache-control': 'max-age=60' }, 'fetched'),
      '/no-cache': validated('no-cache', 'always-check'),
      '/must-revalidate': (_req, res) => {
        if (failing) {
          res.writeHead(500, {});
          res.end('down');
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=10, must-revalidate, stale-if-error=600' });
        res.end('strict');
      },
      '/sie': (_req, res) => {
        if (failing) {
          res.writeHead(503, {});
          res.end('down');
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-if-error=60' });
        res.end('resilient');
      },
      '/swr': (_req, res, hit) => {
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=60' });
        res.end(`version-${hit}`);
      },
      '/plain': respond(
        200,
        { 'cache-control': 'max-age=100', etag: '"p"', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' },
        'plain-body',
      ),
      '/resource': respond(200, { 'cache-control': 'max-age=100' }, 'resource'),
      '/other': respond(200, { 'cache-control': 'max-age=100' }, 'other'),
    });
    origin.route('/resource-post', (_req, res) => {
      res.writeHead(201, { location: '/other' });
      res.end();
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('revalidates a stale entry with If-None-Match and refreshes it from the 304', async () => {
    await edge.get('/etag');
    clock.advance(11);
    const revalidated = await edge.get('/etag');
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, 'body-v1');
    assert.equal(revalidated.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    assert.equal(revalidated.headers['x-refreshed'], 'yes');
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], '"v1"');
    clock.advance(5);
    const hit = await edge.get('/etag');
    assert.match(String(hit.headers['cache-status']), /^strata; hit; ttl=5/);
    assert.equal(hit.headers['x-refreshed'], 'yes');
    assert.equal(origin.count('/etag'), 2);
  });

  it('validates a no-cache response on every reuse', async () => {
    await edge.get('/no-cache');
    const second = await edge.get('/no-cache');
    assert.equal(second.text, 'always-check');
    // RFC 9211 §2.2: the response, not the request, asked for the validation.
    assert.match(String(second.headers['cache-status']), /fwd=stale; fwd-status=304/);
    assert.equal(origin.count('/no-cache'), 2);
  });

  it('serves stale on origin errors within stale-if-error, and never for must-revalidate', async () => {
    await edge.get('/sie');
    await edge.get('/must-revalidate');
    clock.advance(20);
    failing = true;
    try {
      const stale = await edge.get('/sie');
      assert.equal(stale.status, 200);
      assert.equal(stale.text, 'resilient');
      assert.match(String(stale.headers['cache-status']), /fwd=stale; fwd-status=503; detail=stale-if-error/);
      const strict = await edge.get('/must-revalidate');
      assert.equal(strict.status, 500);
      clock.advance(60);
      const tooOld = await edge.get('/sie');
      assert.equal(tooOld.status, 503);
    } finally {
      failing = false;
    }
  });

  it('answers within stale-while-revalidate at once and revalidates once in the background', async () => {
    const first = await edge.get('/swr');
    assert.equal(first.text, 'version-1');
    clock.advance(15);
    const stale = await edge.get('/swr');
    assert.equal(stale.text, 'version-1');
    assert.match(String(stale.headers['cache-status']), /^strata; hit; ttl=-5/);
    assert.equal(origin.count('/swr'), 2);
    const fresh = await edge.get('/swr');
    assert.equal(fresh.text, 'version-2');
    assert.match(String(fresh.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/swr'), 2);
  });

  it('honors request no-cache, max-age, min-fresh, max-stale and only-if-cached', async () => {
    await edge.get('/plain');
    clock.advance(50);
    const noCache = await edge.get('/plain', { headers: { 'cache-control': 'no-cache' } });
    assert.match(String(noCache.headers['cache-status']), /fwd=request/);
    const before = origin.count('/plain');
    clock.advance(10);
    const maxAge = await edge.get('/plain', { headers: { 'cache-control': 'max-age=5' } });
    assert.match(String(maxAge.headers['cache-status']), /fwd=request/);
    const minFresh = await edge.get('/plain', { headers: { 'cache-control': 'min-fresh=1000' } });
    assert.match(String(minFresh.headers['cache-status']), /fwd=request/);
    assert.equal(origin.count('/plain'), before + 2);
    clock.advance(150);
    const maxStale = await edge.get('/plain', { headers: { 'cache-control': 'max-stale=100' } });
    assert.match(String(maxStale.headers['cache-status']), /^strata; hit; ttl=-/);
    const onlyCached = await edge.get('/never-fetched', { headers: { 'cache-control': 'only-if-cached' } });
    assert.equal(onlyCached.status, 504);
    assert.equal(
      onlyCached.headers['cache-status'],
      'strata; detail=only-if-cached',
      'never forwarded: no fwd',
    );
    assert.equal(origin.count('/never-fetched'), 0);
    const pragma = await edge.get('/plain', { headers: { pragma: 'no-cache' } });
    assert.match(String(pragma.headers['cache-status']), /fwd=/);
  });

  it('fetches a miss whose request directives only mention only-if-cached inside other ones', async () => {
    assert.ok(extensionPath.length > 100);
    for (const cacheControl of ['x-only-if-cached', 'max-age=5, ext="only-if-cached"']) {
      const response = await edge.get(extensionPath, { headers: { 'cache-control': cacheControl } });
      assert.equal(response.status, 200, cacheControl);
      assert.equal(response.text, 'fetched');
    }
    assert.equal(origin.count(extensionPath), 1); // fetched once, then a hit
    const refused = await edge.get('/never-fetched', {
      headers: { 'cache-control': 'max-age=5, ONLY-IF-CACHED' },
    });
    assert.equal(refused.status, 504);
    assert.equal(origin.count('/never-fetched'), 0);
  });

  it('answers client conditionals, HEAD and ranges from the stored response', async () => {
    await edge.get('/resource');
    const count = origin.count('/plain');
    const inm = await edge.get('/plain', { headers: { 'if-none-match': 'W/"p"' } });
    assert.equal(inm.status, 304);
    assert.equal(inm.body.length, 0);
    assert.equal(inm.headers.etag, '"p"');
    const ims = await edge.get('/plain', {
      headers: { 'if-modified-since': 'Thu, 02 Jan 2025 00:00:00 GMT' },
    });
    assert.equal(ims.status, 304);
    const head = await edge.get('/plain', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.body.length, 0);
    const range = await edge.get('/plain', { headers: { range: 'bytes=2-5' } });
    assert.equal(range.status, 206);
    assert.equal(range.text, 'ain-');
    assert.equal(range.headers['content-range'], 'bytes 2-5/10');
    const unsatisfiable = await edge.get('/plain', { headers: { range: 'bytes=50-' } });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(origin.count('/plain'), count);
    // RFC 9110 §13.1.2: * is false (304) when a current representation exists, entity tag or not.
    const any = await edge.get('/resource', { headers: { 'if-none-match': '*' } });
    assert.equal(any.status, 304);
    assert.equal(any.body.length, 0);
    assert.match(String(any.headers['cache-status']), /^strata; hit/);
    const other = await edge.get('/resource', { headers: { 'if-none-match': '"not-this-one"' } });
    assert.equal(other.status, 200);
    assert.equal(other.text, 'resource');
    assert.equal(origin.count('/resource'), 1);
  });

  it('invalidates the target and same-origin Location after an unsafe method', async () => {
    await edge.get('/resource-post');
    await edge.get('/other');
    assert.match(String((await edge.get('/other')).headers['cache-status']), /^strata; hit/);
    const post = await edge.get('/resource-post', {
      method: 'POST',
      body: 'x=1',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(post.status, 201);
    assert.match(String(post.headers['cache-status']), /fwd=method/);
    const after = await edge.get('/other');
    assert.match(String(after.headers['cache-status']), /fwd=stale/);
    assert.equal(origin.count('/other'), 2);
  });

  it('invalidates the stored key itself after an unsafe method, even for a path with dot segments', async () => {
    origin.route('/dot/x', (req, res) => {
      res.writeHead(req.method === 'POST' ? 204 : 200, { 'cache-control': 'max-age=100' });
      res.end(req.method === 'POST' ? undefined : 'dotted');
    });
    const raw = { rawPath: '/dot/./x' };
    await edge.get('/', raw);
    assert.match(String((await edge.get('/', raw)).headers['cache-status']), /^strata; hit/);
    await edge.get('/', { ...raw, method: 'POST', body: 'x' });
    assert.match(String((await edge.get('/', raw)).headers['cache-status']), /fwd=stale/);
  });

  it('does not invalidate after an unsafe method answered with an error', async () => {
    origin.route('/keep', (req, res) => {
      res.writeHead(req.method === 'POST' ? 500 : 200, { 'cache-control': 'max-age=100' });
      res.end(req.method === 'POST' ? 'failed' : 'kept');
    });
    await edge.get('/keep');
    const post = await edge.get('/keep', { method: 'POST', body: 'x' });
    assert.equal(post.status, 500);
    const after = await edge.get('/keep');
    assert.match(String(after.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/keep'), 2);
  });
  it('never shares what a 304 brings that a 200 could not be stored with (Set-Cookie, private, Vary: *)', async () => {
    const base = `/account/${'preferences-and-settings-'.repeat(5)}overview.html?locale=en-GB`;
    /** A page stored fresh for 1 s, then revalidated by 304s carrying `extra` (the nth with cookie n). */
    const revalidatedWith = (path: string, extra: (n: number) => Record<string, string>) =>
      origin.route(path, (req, res, hit) => {
        if (req.headers['if-none-match'] === '"s1"') {
          res.writeHead(304, { etag: '"s1"', 'cache-control': 'max-age=300', ...extra(hit) });
          res.end();
          return;
        }
        res.writeHead(200, { etag: '"s1"', 'cache-control': 'max-age=1', 'content-type': 'text/html' });
        res.end('<p>settings</p>');
      });
    const cookie = `${base}&case=cookie`;
    revalidatedWith(cookie, (n) => ({ 'set-cookie': `session=USER${n}-TOKEN; HttpOnly` }));
    await edge.get(cookie);
    clock.advance(2);
    const second = await edge.get(cookie, { headers: { cookie: 'session=USER2-OLD' } });
    assert.equal(second.text, '<p>settings</p>');
    assert.equal(second.headers['set-cookie']?.[0], 'session=USER2-TOKEN; HttpOnly', 'its own answer');
    assert.equal(second.headers['cache-status'], 'strata; fwd=stale; fwd-status=304; detail=set-cookie');
    const third = await edge.get(cookie, { headers: { cookie: 'other=user' } });
    assert.equal(
      third.headers['set-cookie']?.[0],
      'session=USER3-TOKEN; HttpOnly',
      "never the second user's",
    );
    assert.equal(third.text, '<p>settings</p>');
    assert.equal(origin.count(cookie), 3, 'the entry was not refreshed: every reuse asks again');

    // A 304 with Vary: * changes the fields the entry was selected by: the entry goes (below).
    const unshared: [string, Record<string, string>, RegExp][] = [
      ['private', { 'cache-control': 'private, max-age=300' }, /fwd=stale; fwd-status=304/],
      ['vary-star', { vary: '*' }, /^strata; fwd=miss; fwd-status=200; stored$/],
    ];
    for (const [name, extra, then] of unshared) {
      const path = `${base}&case=${name}`;
      revalidatedWith(path, () => extra);
      await edge.get(path);
      clock.advance(2);
      const refreshed = await edge.get(path);
      assert.equal(refreshed.text, '<p>settings</p>');
      assert.equal(refreshed.headers['cache-status'], `strata; fwd=stale; fwd-status=304; detail=${name}`);
      const next = await edge.get(path);
      assert.match(String(next.headers['cache-status']), then, `${name}: not a hit`);
      assert.equal(origin.count(path), 3);
    }

    // private="set-cookie" says the field alone must not be reused: refreshed without it.
    const qualified = `${base}&case=qualified`;
    revalidatedWith(qualified, (n) => ({
      'cache-control': 'max-age=300, private="set-cookie"',
      'set-cookie': `session=USER${n}-TOKEN`,
    }));
    await edge.get(qualified);
    clock.advance(2);
    const refreshed = await edge.get(qualified);
    assert.equal(refreshed.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    const hit = await edge.get(qualified, { headers: { cookie: 'other=user' } });
    assert.match(String(hit.headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(hit.headers['set-cookie'], undefined);
    assert.equal(hit.text, '<p>settings</p>');
    assert.equal(origin.count(qualified), 2);
  });

  it("never answers one user's refreshed response to another when a 304 changes Vary", async () => {
    // The origin first varies on Accept-Language alone; from then on, on Cookie too.
    const path = `/account/${'dashboard-summary-'.repeat(5)}overview.html?section=recent&locale=en-GB`;
    assert.ok(path.length > 100);
    origin.route(path, (req, res, hit) => {
      const vary = hit === 1 ? 'Accept-Language' : 'Accept-Language, Cookie';
      if (req.headers['if-none-match'] === '"d1"') {
        res.writeHead(304, { etag: '"d1"', 'cache-control': 'max-age=100', vary });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"d1"', 'cache-control': hit === 1 ? 'max-age=1' : 'max-age=100', vary });
      res.end(`dashboard of ${req.headers.cookie}`);
    });
    const alice = { 'accept-language': 'en', cookie: 'u=alice' };
    const bob = { 'accept-language': 'en', cookie: 'u=bob' };
    await edge.get(path, { headers: alice });
    clock.advance(2);
    const revalidated = await edge.get(path, { headers: alice });
    assert.equal(revalidated.text, 'dashboard of u=alice', 'the 304 validated her stored body');
    assert.equal(revalidated.headers.vary, 'Accept-Language, Cookie');
    assert.equal(
      revalidated.headers['cache-status'],
      'strata; fwd=stale; fwd-status=304; detail=vary-changed',
    );
    assert.equal(origin.count(path), 2);

    const forBob = await edge.get(path, { headers: bob });
    assert.equal(forBob.text, 'dashboard of u=bob');
    assert.equal(forBob.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count(path), 3, "Bob's request reached the origin");
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], undefined, 'nothing left to validate');
    // Stored under the fields that came with Bob's body: each user gets their own.
    const again = await edge.get(path, { headers: alice });
    assert.equal(again.text, 'dashboard of u=alice');
    assert.match(String(again.headers['cache-status']), /^strata; fwd=vary-miss; fwd-status=200; stored/);
    const hit = await edge.get(path, { headers: bob });
    assert.equal(hit.text, 'dashboard of u=bob');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(path), 4);
  });

  it('never serves stale to another user an entry a background 304 gave Vary: *', async () => {
    const path = `/account/${'notifications-feed-'.repeat(5)}list.json?page=1&per_page=50&sort=newest`;
    assert.ok(path.length > 100);
    origin.route(path, (req, res) => {
      if (req.headers['if-none-match'] === '"n1"') {
        res.writeHead(304, {
          etag: '"n1"',
          'cache-control': 'max-age=1, stale-while-revalidate=600',
          vary: '*',
        });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"n1"', 'cache-control': 'max-age=1, stale-while-revalidate=600' });
      res.end(`feed of ${req.headers.cookie}`);
    });
    await edge.get(path, { headers: { cookie: 'u=alice' } });
    clock.advance(2);
    // Within stale-while-revalidate: her stale copy at once, and a revalidation in the background.
    const stale = await edge.get(path, { headers: { cookie: 'u=alice' } });
    assert.equal(stale.text, 'feed of u=alice');
    assert.match(String(stale.headers['cache-status']), /^strata; hit; ttl=-/);
    assert.equal(origin.count(path), 2, 'the background revalidation ran');

    const forBob = await edge.get(path, { headers: { cookie: 'u=bob' } });
    assert.equal(forBob.text, 'feed of u=bob');
    assert.equal(forBob.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count(path), 3);
  });

  it('never delivers nor stores a 206 the origin sent to a request for the whole response', async () => {
    const base = `/media/${'episode-transcript-'.repeat(6)}full.txt`;
    /** 200 the first time, then a 206 of its first three bytes whatever was asked. */
    const partialLater =
      (cacheControl: string) => (_req: unknown, res: import('node:http').ServerResponse, hit: number) => {
        if (hit === 1) {
          res.writeHead(200, { etag: '"t1"', 'cache-control': cacheControl, 'content-type': 'text/plain' });
          res.end('ORIGINAL');
          return;
        }
        res.writeHead(206, {
          'content-range': 'bytes 0-2/8',
          'cache-control': 'max-age=300',
          'content-type': 'text/plain',
        });
        res.end('NEW');
      };
    const resilient = `${base}?case=stale-if-error`;
    origin.route(resilient, partialLater('max-age=1, stale-if-error=600'));
    await edge.get(resilient);
    clock.advance(2);
    const stale = await edge.get(resilient);
    assert.equal(stale.status, 200);
    assert.equal(stale.text, 'ORIGINAL', 'the stored whole response, not the piece');
    assert.match(String(stale.headers['cache-status']), /detail=stale-if-error/);

    const strict = `${base}?case=strict`;
    origin.route(strict, partialLater('max-age=1'));
    await edge.get(strict);
    clock.advance(2);
    const refused = await edge.get(strict);
    assert.equal(refused.status, 502);
    assert.match(String(refused.headers['proxy-status']), /http_protocol_error/);

    // A miss: the origin's 206 to an unranged request is not passed on, nor stored.
    const miss = `${base}?case=miss`;
    origin.route(miss, (_req, res) => {
      res.writeHead(206, { 'content-range': 'bytes 0-2/8', 'cache-control': 'max-age=300' });
      res.end('NEW');
    });
    for (let i = 0; i < 2; i++) assert.equal((await edge.get(miss)).status, 502);
    assert.equal(origin.count(miss), 2);
    // A client's own Range still gets the origin's 206 (stored as a partial entry).
    const ranged = await edge.get(miss, { headers: { range: 'bytes=0-2' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.text, 'NEW');
  });
  it('asks once more without validators when a 304 names another strong entity tag, and stores the answer', async () => {
    const base = `/catalog/${'seasonal-collection-'.repeat(6)}items.json?lang=en&currency=EUR`;
    /** v1 under "a"; then a 304 with "b" to If-None-Match "a" (it confirms nothing); v2 under "b". */
    const retagged =
      (cacheControl: string) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, hit: number) => {
        if (hit === 1) {
          res.writeHead(200, {
            etag: '"a"',
            'cache-control': cacheControl,
            'content-type': 'application/json',
          });
          res.end('{"v":1}');
        } else if (req.headers['if-none-match'] !== undefined) {
          res.writeHead(304, { etag: '"b"', 'cache-control': cacheControl });
          res.end();
        } else {
          res.writeHead(200, {
            etag: '"b"',
            'cache-control': cacheControl,
            'content-type': 'application/json',
          });
          res.end('{"v":2}');
        }
      };
    const foreground = `${base}&case=foreground`;
    origin.route(foreground, retagged('max-age=10'));
    assert.equal((await edge.get(foreground)).text, '{"v":1}');
    clock.advance(11);
    const refetched = await edge.get(foreground);
    assert.equal(refetched.status, 200);
    assert.equal(refetched.text, '{"v":2}', 'not the stored body the 304 did not select');
    assert.equal(refetched.headers.etag, '"b"');
    assert.match(String(refetched.headers['cache-status']), /fwd-status=200; stored/);
    const conditional = origin.requests
      .filter((r) => r.path === foreground)
      .map((r) => r.headers['if-none-match']);
    assert.deepEqual(conditional, [undefined, '"a"', undefined]);
    const hit = await edge.get(foreground);
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(hit.text, '{"v":2}');
    assert.equal(origin.count(foreground), 3);

    const background = `${base}&case=background`;
    origin.route(background, retagged('max-age=10, stale-while-revalidate=60'));
    await edge.get(background);
    clock.advance(11);
    const stale = await edge.get(background);
    assert.equal(stale.text, '{"v":1}', 'within stale-while-revalidate');
    assert.ok(await until(() => origin.count(background) === 3, 5000), 'the background refetch');
    assert.ok(
      await until(async () => (await edge.get(background)).text === '{"v":2}', 5000),
      'the refetched response is stored',
    );
    const after = await edge.get(background);
    assert.match(String(after.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(background), 3);
  });
  it('counts the Age a 304 carries in the refreshed response (a parent cache answered it)', async () => {
    // A parent tier answers the revalidation from its own copy, 50 s old: the refreshed entry is
    // 50 s old too, and stale once the parent's would be (RFC 9111 §4.3.4, §4.2.3).
    const path = `/catalogue/${'seasonal-collection-'.repeat(5)}index.json?region=eu&page=1`;
    assert.ok(path.length > 100);
    origin.route(path, (req, res) => {
      res.sendDate = false;
      if (req.headers['if-none-match'] === '"cat"') {
        res.writeHead(304, { etag: '"cat"', 'cache-control': 'max-age=60', age: '50' });
        res.end();
        return;
      }
      res.writeHead(200, {
        etag: '"cat"',
        'cache-control': 'max-age=60',
        'content-type': 'application/json',
      });
      res.end('{"items":[]}');
    });
    await edge.get(path);
    clock.advance(61);
    const revalidated = await edge.get(path);
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, '{"items":[]}');
    assert.equal(revalidated.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    assert.equal(revalidated.headers.age, '50');
    const hit = await edge.get(path);
    assert.equal(hit.headers['cache-status'], 'strata; hit; ttl=10');
    assert.equal(hit.headers.age, '50');
    clock.advance(15);
    const stale = await edge.get(path);
    assert.equal(stale.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    assert.equal(origin.count(path), 3);
  });
  it("evaluates a client's If-None-Match and If-Modified-Since against the response it fetched", async () => {
    // RFC 9110 §13.2.1: the fill asks the origin without the client's conditionals (it wants a
    // body to store); the client whose copy is the current one still gets its 304.
    const path = `/downloads/${'installer-release-notes-'.repeat(5)}latest.txt?channel=stable`;
    assert.ok(path.length > 100);
    let version = 1;
    const modified = 'Wed, 01 Jan 2025 00:00:00 GMT';
    origin.route(path, (req, res) => {
      if (req.headers['if-none-match'] === `"r${version}"`) {
        res.writeHead(304, { etag: `"r${version}"`, 'cache-control': 'max-age=10' });
        res.end();
        return;
      }
      const body = `release ${version} `.repeat(200);
      res.writeHead(200, {
        etag: `"r${version}"`,
        'last-modified': modified,
        'cache-control': 'max-age=10',
        'content-type': 'text/plain',
        'content-length': String(body.length),
      });
      res.end(body);
    });
    const miss = await edge.get(path, { headers: { 'if-none-match': '"r0", "r1"' } });
    assert.equal(miss.status, 304);
    assert.equal(miss.body.length, 0);
    assert.equal(miss.headers.etag, '"r1"');
    assert.equal(miss.headers['content-length'], undefined);
    assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    const hit = await edge.get(path);
    assert.equal(hit.status, 200);
    assert.equal(hit.text, 'release 1 '.repeat(200));
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(path), 1);
    // Stale, and changed at the origin: a client that already holds the new version gets a 304,
    // one holding the old version the new body.
    clock.advance(11);
    version = 2;
    const changed = await edge.get(path, { headers: { 'if-none-match': '"r2"' } });
    assert.equal(changed.status, 304);
    assert.equal(changed.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored');
    clock.advance(11);
    version = 3;
    const since = await edge.get(path, { headers: { 'if-modified-since': modified } });
    assert.equal(since.status, 304);
    clock.advance(11);
    version = 4;
    const old = await edge.get(path, { headers: { 'if-none-match': '"r3"' } });
    assert.equal(old.status, 200);
    assert.equal(old.text, 'release 4 '.repeat(200));
    assert.equal(origin.count(path), 4);
    // A client that wants gzip is answered from the coding made from the stored body, whose
    // entity tag is the coding's own.
    clock.advance(11);
    version = 5;
    const coded = await edge.get(path, { headers: { 'accept-encoding': 'gzip', 'if-none-match': '"r5"' } });
    assert.equal(coded.status, 200);
    assert.equal(coded.headers['content-encoding'], 'gzip');
    const codedAgain = await edge.get(path, {
      headers: { 'accept-encoding': 'gzip', 'if-none-match': String(coded.headers.etag) },
    });
    assert.equal(codedAgain.status, 304);
    assert.equal(origin.count(path), 5);
  });
  it('answers a suffix range on a stored empty body with the empty 200, not a malformed 206', async () => {
    const path = `/feeds/${'notifications-for-account-'.repeat(4)}unread.json?since=1735689600`;
    assert.ok(path.length > 100);
    origin.route(path, respond(200, { 'cache-control': 'max-age=100', etag: '"none"' }, ''));
    await edge.get(path);
    const suffix = await edge.get(path, { headers: { range: 'bytes=-500' } });
    assert.equal(suffix.status, 200);
    assert.equal(suffix.headers['content-range'], undefined);
    assert.equal(suffix.headers['content-length'], '0');
    assert.equal(suffix.body.length, 0);
    assert.match(String(suffix.headers['cache-status']), /^strata; hit/);
    const from = await edge.get(path, { headers: { range: 'bytes=0-' } });
    assert.equal(from.status, 416);
    assert.equal(from.headers['content-range'], 'bytes */0');
    assert.equal(origin.count(path), 1);
  });
  it('answers 304 to an If-None-Match naming an entity tag that holds a comma', async () => {
    // RFC 9110 §8.8.3: a comma is an etagc; `"3f2a,br"` is one entity tag, not two.
    const path = `/assets/${'application-bundle-chunk-'.repeat(4)}vendor.js?build=2026.12.04`;
    assert.ok(path.length > 100);
    origin.route(
      path,
      respond(
        200,
        { 'cache-control': 'max-age=100', etag: '"3f2a,br"', 'content-type': 'text/javascript' },
        'x();',
      ),
    );
    await edge.get(path);
    const listed = await edge.get(path, { headers: { 'if-none-match': '"1c0d,br", "3f2a,br"' } });
    assert.equal(listed.status, 304);
    assert.equal(listed.headers.etag, '"3f2a,br"');
    const other = await edge.get(path, { headers: { 'if-none-match': '"3f2a", "br"' } });
    assert.equal(other.status, 200);
    assert.equal(other.text, 'x();');
    assert.equal(origin.count(path), 1);
  });
  it("answers a client's If-None-Match with 304 when the origin's 200 is not storable", async () => {
    // The fill asks without the client's conditionals; a private page or an API answer to an
    // Authorization request is relayed, and a browser holding its current version gets a 304.
    const page = `/account/${'order-history-and-invoices-'.repeat(4)}summary.html?tab=recent`;
    assert.ok(page.length > 100);
    origin.route(page, (_req, res) => {
      res.writeHead(200, {
        etag: '"acct-7"',
        'cache-control': 'private, max-age=0',
        'content-type': 'text/html',
      });
      res.end('<p>orders of one user</p>'.repeat(40));
    });
    const first = await edge.get(page, { headers: { cookie: 'session=abc' } });
    assert.equal(first.status, 200);
    const revalidation = await edge.get(page, {
      headers: { cookie: 'session=abc', 'if-none-match': '"acct-7"' },
    });
    assert.equal(revalidation.status, 304);
    assert.equal(revalidation.body.length, 0);
    assert.equal(revalidation.headers.etag, '"acct-7"');
    assert.equal(revalidation.headers['content-type'], undefined);
    assert.equal(revalidation.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=private');
    const older = await edge.get(page, { headers: { cookie: 'session=abc', 'if-none-match': '"acct-6"' } });
    assert.equal(older.status, 200);
    assert.equal(older.text, '<p>orders of one user</p>'.repeat(40));
    const api = `/api/v2/${'organisations/acme/projects/'.repeat(3)}settings.json?expand=members`;
    origin.route(api, respond(200, { etag: 'W/"cfg-3"', 'cache-control': 'max-age=60' }, '{"members":[]}'));
    const authorized = await edge.get(api, {
      headers: { authorization: 'Bearer token-of-alice', 'if-none-match': '"cfg-3"' },
    });
    assert.equal(authorized.status, 304);
    assert.equal(
      authorized.headers['cache-status'],
      'strata; fwd=miss; fwd-status=200; detail=authorization',
    );
    assert.equal(origin.count(page), 3);
    assert.equal(origin.count(api), 1);
  });
});
