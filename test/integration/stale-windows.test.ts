/**
 * When a stored response may answer stale: a soft purge's stale-while-revalidate window, a
 * no-cache response when the origin fails, and what Cache-Status says of such answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type AdminNode, startAdminNode } from './purge-support.ts';

const LONG = `/catalogue/${'category/subcategory/'.repeat(6)}product-sheet.html?sku=AB-1234567&view=full`;
const target = (prefix: string) => `${prefix}${LONG}`;

describe('stale answers', () => {
  let origin: TestOrigin;
  let edge: AdminNode;
  const clock = createClock();
  let failing = false;

  before(async () => {
    const route =
      (cacheControl: string) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        if (failing) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('down');
          return;
        }
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"', 'cache-control': cacheControl });
          res.end();
          return;
        }
        res.writeHead(200, { 'cache-control': cacheControl, etag: '"v1"', 'content-type': 'text/html' });
        res.end(`<p>${req.url}</p>`);
      };
    const path = (prefix: string) => target(prefix).split('?')[0]!;
    origin = await startOrigin({
      [path('/swr')]: route('max-age=3600, stale-while-revalidate=5'),
      [path('/no-cache')]: route('no-cache, max-age=100'),
      [path('/no-cache-sie')]: route('no-cache, max-age=100, stale-if-error=60'),
      [path('/short')]: route('max-age=2'),
      [path('/turned-private')]: (_req, res, hit) => {
        // Public at first; then (a user's session began) private, and no-store.
        const later = hit > 1;
        res.writeHead(200, {
          'cache-control': later ? 'private, no-store' : 'max-age=2, stale-while-revalidate=60',
          'content-type': 'text/html',
        });
        res.end(later ? `<p>yours ${hit}</p>` : '<p>everyone</p>');
      },
      [path('/blocked-once')]: (req, res, hit) => {
        // The second request's client is refused by the origin (a block by address, a rate limit).
        if (hit === 2 || req.headers.cookie !== undefined) {
          res.writeHead(hit === 2 ? 403 : 200, {
            'cache-control': hit === 2 ? 'no-cache' : 'private',
            'content-type': 'text/html',
          });
          res.end(hit === 2 ? 'blocked' : `<p>your page ${hit}</p>`);
          return;
        }
        res.writeHead(200, {
          'cache-control': 'max-age=2, stale-while-revalidate=60',
          'content-type': 'text/html',
        });
        res.end(`<p>shared ${hit}</p>`);
      },
      [path('/by-language')]: (req, res, hit) => {
        const lang = req.headers['accept-language'];
        res.writeHead(200, {
          'cache-control': hit > 2 && lang === 'en' ? 'no-store' : 'max-age=2, stale-while-revalidate=60',
          vary: 'accept-language',
          'content-type': 'text/html',
        });
        res.end(`<p>${lang} ${hit}</p>`);
      },
      [path('/client-no-store')]: (_req, res, hit) => {
        res.writeHead(200, {
          'cache-control': 'max-age=2, stale-while-revalidate=60',
          'content-type': 'text/html',
        });
        res.end(`<p>shared ${hit}</p>`);
      },
    });
    edge = await startAdminNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const cacheStatus = (res: { headers: Record<string, unknown> }) => String(res.headers['cache-status']);

  it('after a soft purge, serves at once within the stale-while-revalidate window counted from the purge', async () => {
    const url = target('/swr');
    await edge.get(url);
    clock.advance(7); // older than the 5 s window: counted from storing, no window would be left
    const fetched = origin.count(url);
    await edge.purge({ urls: [`${edge.base}${url}`], soft: true });
    const res = await edge.get(url);
    assert.equal(res.status, 200);
    assert.match(cacheStatus(res), /^strata; hit; ttl=-1/, 'served stale at once');
    assert.equal(origin.count(url), fetched + 1, 'one background revalidation');
    assert.match(cacheStatus(await edge.get(url)), /^strata; hit; ttl=\d/, 'fresh again');
  });

  it('never answers an origin error with a no-cache response, unless it gave stale-if-error', async () => {
    const plain = target('/no-cache');
    const granted = target('/no-cache-sie');
    await edge.get(plain);
    await edge.get(granted);
    const revalidated = await edge.get(plain);
    assert.match(
      cacheStatus(revalidated),
      /fwd=stale; fwd-status=304/,
      'the response said no-cache, not the request',
    );
    failing = true;
    try {
      const refused = await edge.get(plain);
      assert.equal(refused.status, 503);
      assert.doesNotMatch(cacheStatus(refused), /detail=stale-if-error/);
      const stale = await edge.get(granted);
      assert.equal(stale.status, 200);
      assert.match(cacheStatus(stale), /detail=stale-if-error/);
    } finally {
      failing = false;
    }
  });

  const stored = async (url: string) =>
    (await edge.call('GET', `/cache?url=${encodeURIComponent(`${edge.base}${url}`)}`)).status === 200;

  it('stops serving a stale response once its background revalidation got one that cannot be stored', async () => {
    const url = target('/turned-private');
    assert.equal((await edge.get(url)).text, '<p>everyone</p>');
    clock.advance(3);
    const stale = await edge.get(url);
    assert.equal(stale.text, '<p>everyone</p>');
    assert.match(cacheStatus(stale), /^strata; hit; ttl=-1/, 'served stale while it revalidates');
    assert.ok(await until(async () => !(await stored(url)), 5000), 'the outdated entry removed');
    assert.equal(origin.count(url), 2);
    const next = await edge.get(url);
    assert.equal(next.text, '<p>yours 3</p>', 'the origin asked, not the outdated copy served again');
    assert.match(cacheStatus(next), /^strata; fwd=(?:vary-)?miss; fwd-status=200; detail=no-store/);
    assert.equal(origin.count(url), 3);
  });

  it("keeps a stale response when its revalidation was unstorable for the request's own reason", async () => {
    const url = target('/client-no-store');
    await edge.get(url);
    clock.advance(3);
    // The revalidation goes with this client's request no-store (RFC 9111 §5.2.1.5): not stored,
    // and no client can take away what others are served.
    const stale = await edge.get(url, { headers: { 'cache-control': 'no-store' } });
    assert.match(cacheStatus(stale), /^strata; hit; ttl=-1/);
    assert.ok(await until(() => origin.count(url) === 2, 5000), 'one background revalidation');
    assert.ok(await until(async () => edge.node.edge.revalidating.size === 0, 5000));
    assert.ok(await stored(url), 'the entry stays');
  });

  it('keeps a stale response when the revalidation was answered for that client only: an error status, a personal page', async () => {
    const url = target('/blocked-once');
    await edge.get(url);
    clock.advance(3);
    assert.match(cacheStatus(await edge.get(url)), /^strata; hit; ttl=-1/);
    assert.ok(await until(() => origin.count(url) === 2, 5000));
    assert.ok(await until(async () => edge.node.edge.revalidating.size === 0, 5000));
    assert.ok(await stored(url), 'a 403 for one client removes nothing');
    // A client with a session revalidates the next time: its private page removes nothing either.
    clock.advance(1);
    const withSession = await edge.get(url, { headers: { cookie: 'session=0123456789abcdef' } });
    assert.match(cacheStatus(withSession), /^strata; hit; ttl=-2/);
    assert.ok(await until(() => origin.count(url) === 3, 5000));
    assert.ok(await until(async () => edge.node.edge.revalidating.size === 0, 5000));
    assert.ok(await stored(url), "one user's private page removes nothing");
  });

  it('removes only the variant whose revalidation was answered unstorable', async () => {
    const url = target('/by-language');
    const en = { headers: { 'accept-language': 'en' } };
    const fr = { headers: { 'accept-language': 'fr' } };
    await edge.get(url, en);
    await edge.get(url, fr);
    clock.advance(3);
    assert.match(cacheStatus(await edge.get(url, en)), /^strata; hit; ttl=-1/);
    assert.ok(await until(() => origin.count(url) === 3, 5000));
    assert.ok(await until(async () => edge.node.edge.revalidating.size === 0, 5000));
    const french = await edge.get(url, fr);
    assert.equal(french.text, '<p>fr 2</p>', 'the other variant stays');
    assert.match(cacheStatus(french), /^strata; hit; ttl=-1/);
    assert.ok(await until(() => origin.count(url) === 4, 5000));
    assert.ok(await until(async () => edge.node.edge.revalidating.size === 0, 5000));
    const english = await edge.get(url, en);
    assert.equal(english.text, '<p>en 5</p>');
    assert.match(cacheStatus(english), /^strata; fwd=(?:vary-)?miss; fwd-status=200; detail=no-store/);
  });

  it('gives a response served less than a second past its lifetime a negative ttl', async () => {
    const url = target('/short');
    await edge.get(url);
    clock.advance(2.5);
    const res = await edge.get(url, { headers: { 'cache-control': 'max-stale=10' } });
    assert.match(cacheStatus(res), /^strata; hit; ttl=-1/);
  });
});
