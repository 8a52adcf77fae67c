import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const cached = (body: string, extra: Record<string, string> = {}) =>
  respond(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', ...extra }, body);

/** An origin answer with an ETag that honours If-None-Match. */
function validated(etag: string, cacheControl: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag, 'cache-control': cacheControl });
      res.end();
      return;
    }
    res.writeHead(200, { etag, 'cache-control': cacheControl });
    res.end('validated body');
  };
}

const SLOW = `/catalogue/${'seasonal-collection-'.repeat(4)}overview`;

describe('purge through the admin API', () => {
  const held = Promise.withResolvers<void>();
  let origin: TestOrigin;
  let edge: AdminNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/vary': (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language' });
        res.end(`lang ${req.headers['accept-language'] ?? 'none'}`);
      },
      '/soft': validated('"s1"', 'max-age=60'),
      '/swr': validated('"w1"', 'max-age=60, stale-while-revalidate=30'),
      '/img/a': cached('a'),
      '/img/b': cached('b'),
      '/imgx': cached('x'),
      '/t/1': cached('1', { 'surrogate-key': 'red blue' }),
      '/t/2': cached('2', { 'cache-tag': 'red' }),
      '/t/3': cached('3', { 'surrogate-key': 'blue' }),
      '/all/1': cached('1'),
      '/all/2': cached('2'),
      '/q': (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(req.url);
      },
      [SLOW]: async (_req, res, hit) => {
        if (hit === 1) await held.promise;
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`slow ${hit}`);
      },
    });
    edge = await startAdminNode({
      origin: origin.url,
      now: clock.now,
      config: {
        sites: [
          { name: 'sorted', hosts: ['sorted.test'], origins: ['origin'], sortQuery: true },
          { name: 'default', hosts: ['*'], origins: ['origin'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('hard-purges every variant of a URL; the next request goes to the origin', async () => {
    await edge.get('/vary', { headers: { 'accept-language': 'en' } });
    await edge.get('/vary', { headers: { 'accept-language': 'fr' } });
    const hit = await edge.get('/vary', { headers: { 'accept-language': 'fr' } });
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/vary'), 2);

    const counters = await metricsDelta(edge.node.metrics.registry);
    const result = await edge.purge({ urls: [`${edge.base}/vary`] });
    assert.equal(result.purged, 2);
    assert.equal(result.soft, false);
    assert.ok(result.sequence >= 1);

    const after = await edge.get('/vary', { headers: { 'accept-language': 'fr' } });
    assert.equal(after.text, 'lang fr');
    assert.equal(after.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count('/vary'), 3);
    const delta = await counters.delta();
    assert.equal(delta['strata_purges_total{mode="hard",source="api"}'], 1);
    assert.equal(delta['strata_purged_entries_total{mode="hard"}'], 2);
    assert.equal(delta['strata_cache_inserts_total{outcome="stored"}'], 1, 'the refetched variant is stored');
  });

  it('soft-purges by marking stale: the next request revalidates and refreshes the entry', async () => {
    await edge.get('/soft');
    assert.match(String((await edge.get('/soft')).headers['cache-status']), /^strata; hit/);
    const counters = await metricsDelta(edge.node.metrics.registry);
    const result = await edge.purge({ urls: [`${edge.base}/soft`], soft: true });
    assert.deepEqual({ purged: result.purged, soft: result.soft }, { purged: 1, soft: true });
    assert.equal((await counters.delta())['strata_purged_entries_total{mode="soft"}'], 1);

    const revalidated = await edge.get('/soft');
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, 'validated body');
    assert.match(String(revalidated.headers['cache-status']), /fwd=stale; fwd-status=304/);
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], '"s1"');
    assert.match(String((await edge.get('/soft')).headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/soft'), 2);
  });

  it('soft purge within stale-while-revalidate serves stale once while one revalidation runs', async () => {
    await edge.get('/swr');
    await edge.purge({ urls: [`${edge.base}/swr`], soft: true });
    const stale = await edge.get('/swr');
    assert.equal(stale.text, 'validated body');
    assert.match(String(stale.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/swr'), 2);
    const fresh = await edge.get('/swr');
    assert.match(String(fresh.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/swr'), 2);
  });

  it('purges by prefix in key order, leaving keys that only share a shorter prefix', async () => {
    for (const path of ['/img/a', '/img/b', '/imgx']) await edge.get(path);
    const result = await edge.purge({
      prefixes: [`${edge.base.toUpperCase().replace('HTTP', 'http')}/img/`],
    });
    assert.equal(result.purged, 2);
    assert.match(String((await edge.get('/imgx')).headers['cache-status']), /^strata; hit/);
    assert.match(String((await edge.get('/img/a')).headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count('/img/a'), 2);
    assert.equal(origin.count('/imgx'), 1);
  });

  it('purges by tag through the tag index, from Surrogate-Key and Cache-Tag', async () => {
    for (const path of ['/t/1', '/t/2', '/t/3']) await edge.get(path);
    const counters = await metricsDelta(edge.node.metrics.registry);
    const result = await edge.purge({ tags: ['red'] });
    assert.equal(result.purged, 2);
    assert.equal((await counters.delta())['strata_purged_entries_total{mode="hard"}'], 2);
    assert.equal([...edge.node.store.tagged('red')].length, 0);
    assert.match(String((await edge.get('/t/3')).headers['cache-status']), /^strata; hit/);
    assert.match(String((await edge.get('/t/1')).headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count('/t/1'), 2);
    assert.equal(origin.count('/t/2'), 1);
  });

  it('purges by the tags a 304 brought, and no longer by those it replaced', async () => {
    const path = `/releases/${'changelog-and-notes-'.repeat(5)}latest.html?channel=stable&platform=linux`;
    assert.ok(path.length > 100);
    origin.route(path, (req, res, hit) => {
      if (req.headers['if-none-match'] === '"r1"') {
        res.writeHead(304, {
          etag: '"r1"',
          'cache-control': 'max-age=300',
          'surrogate-key': 'release-2 notes',
        });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"r1"', 'cache-control': 'max-age=1', 'surrogate-key': 'release-1 notes' });
      res.end(`notes ${hit}`);
    });
    /** The ids the admin lists under `tag` (what `strata cache ls --tag` shows). */
    const listed = async (tag: string) => {
      const response = await edge.call('GET', `/cache?tag=${tag}`);
      return (JSON.parse(response.text) as { entries: { id: string }[] }).entries.map((entry) => entry.id);
    };
    await edge.get(path);
    clock.advance(2);
    const revalidated = await edge.get(path);
    assert.equal(revalidated.text, 'notes 1');
    assert.equal(revalidated.headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
    assert.deepEqual(await listed('release-1'), [], 'the old tag no longer lists it');
    assert.equal((await listed('release-2')).length, 1);
    assert.equal((await listed('notes')).length, 1, 'a tag it kept still lists it, once');

    assert.equal((await edge.purge({ tags: ['release-1'] })).purged, 0);
    const hit = await edge.get(path);
    assert.equal(hit.text, 'notes 1');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(path), 2);

    assert.equal((await edge.purge({ tags: ['release-2'] })).purged, 1);
    const refetched = await edge.get(path);
    assert.equal(refetched.text, 'notes 3');
    assert.equal(refetched.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count(path), 3);
    assert.deepEqual(await listed('release-2'), []);
  });

  it('keeps the tags of a tag field the node hides when a 304 changes another one', async () => {
    const path = `/downloads/${'installer-packages-'.repeat(5)}index.html?arch=x86_64`;
    const hidden = await startAdminNode({
      origin: origin.url,
      now: clock.now,
      config: { proxy: { hideResponseHeaders: ['server', 'surrogate-key'] } },
    });
    try {
      origin.route(path, (req, res, hit) => {
        if (req.headers['if-none-match'] === '"d1"') {
          res.writeHead(304, { etag: '"d1"', 'cache-control': 'max-age=300', 'cache-tag': 'downloads-2' });
          res.end();
          return;
        }
        res.writeHead(200, {
          etag: '"d1"',
          'cache-control': 'max-age=1',
          'surrogate-key': 'installers',
          'cache-tag': 'downloads-1',
        });
        res.end(`downloads ${hit}`);
      });
      await hidden.get(path);
      clock.advance(2);
      assert.equal((await hidden.get(path)).headers['cache-status'], 'strata; fwd=stale; fwd-status=304');
      // Surrogate-Key is not stored, and the 304 did not repeat it: its tag still reaches the entry.
      assert.equal((await hidden.purge({ tags: ['installers'] })).purged, 1);
      assert.equal((await hidden.get(path)).text, 'downloads 3');
      assert.equal(origin.count(path), 3);
    } finally {
      await hidden.close();
    }
  });

  it('purges a prefix or host longer than any stored key as one that matches nothing: 200, logged applied, the store keeps writing', async () => {
    const long = 'p'.repeat(5000);
    await edge.get('/img/a');
    for (const body of [{ prefixes: [`${edge.base}/${long}`] }, { hosts: [`${long}.test`] }]) {
      const response = await edge.call('POST', '/purge', body);
      assert.equal(response.status, 200, response.text.slice(0, 300));
      const result = JSON.parse(response.text);
      assert.equal(result.purged, 0);
      assert.match(result.warning, /nothing matched/);
      assert.equal(edge.node.purge.log.get(result.sequence)?.applied, true);
    }
    assert.equal(edge.node.store.refusingWrites, false, 'no write failed');
    assert.deepEqual(JSON.parse((await edge.call('GET', '/healthz')).text), { status: 'ok' });
    assert.match(String((await edge.get('/img/a')).headers['cache-status']), /^strata; hit/);
  });

  it('does not say stored on an answer whose fill a purge overtook before its head was sent', async () => {
    const answer = edge.get(`${SLOW}?page=1`);
    assert.ok(await until(() => origin.count(`${SLOW}?page=1`) === 1, 5000), 'the fill reached the origin');
    assert.equal((await edge.purge({ urls: [`${edge.base}${SLOW}?page=1`] })).purged, 0);
    held.resolve();
    const first = await answer;
    assert.equal(first.text, 'slow 1');
    assert.match(String(first.headers['cache-status']), /^strata; fwd=\w+(?:-miss)?; fwd-status=200$/);
    const next = await edge.get(`${SLOW}?page=1`);
    assert.equal(next.text, 'slow 2', 'nothing was stored: the origin is asked again');
    assert.match(String(next.headers['cache-status']), /; stored$/);
    assert.match(String((await edge.get(`${SLOW}?page=1`)).headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(`${SLOW}?page=1`), 2);
  });

  it('purges everything with all', async () => {
    await edge.get('/all/1');
    await edge.get('/all/2');
    const stored = edge.node.store.usage().entries;
    const counters = await metricsDelta(edge.node.metrics.registry);
    const result = await edge.purge({ all: true });
    assert.ok(result.purged >= 2);
    assert.equal(result.purged, stored, 'every stored variant, no more');
    assert.equal((await counters.delta())['strata_purged_entries_total{mode="hard"}'], stored);
    assert.equal(edge.node.store.usage().entries, 0);
    assert.match(String((await edge.get('/all/1')).headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count('/all/1'), 2);
  });

  it("maps a purge URL to the site's cache key, sorting the query when the site does", async () => {
    await edge.get('/q?b=2&a=1', { headers: { host: 'sorted.test' } });
    assert.match(
      String((await edge.get('/q?a=1&b=2', { headers: { host: 'sorted.test' } })).headers['cache-status']),
      /^strata; hit/,
    );
    const result = await edge.purge({ urls: ['http://SORTED.test:80/q?b=2&a=1#frag'] });
    assert.equal(result.purged, 1);
    assert.match(
      String((await edge.get('/q?a=1&b=2', { headers: { host: 'sorted.test' } })).headers['cache-status']),
      /fwd=miss/,
    );
    assert.equal(origin.count('/q?b=2&a=1') + origin.count('/q?a=1&b=2'), 2);
  });

  it('gives each purge the next sequence and logs it before answering', async () => {
    const first = await edge.purge({ urls: [`${edge.base}/nothing`] });
    const second = await edge.purge({ tags: ['none'], soft: true });
    assert.equal(second.sequence, first.sequence + 1);
    assert.equal(first.purged, 0);
    const logged = edge.node.purge.log.get(second.sequence);
    assert.deepEqual(logged?.command, { urls: [], prefixes: [], tags: ['none'], all: false, soft: true });
    assert.equal(logged?.applied, true);
  });

  it('answers 400 with the reason for bad JSON, an empty purge, unknown fields and relative URLs', async () => {
    for (const [body, reason] of [
      ['{"urls": [', /bad JSON/],
      ['', /empty purge/],
      ['  \n', /empty purge/],
      [{}, /empty purge/],
      [{ urls: [] }, /empty purge/],
      [{ url: ['x'] }, /unknown field "url"/],
      [{ urls: ['/relative'] }, /not an absolute/],
      [{ tags: 'red' }, /tags must be an array/],
      [{ prefixes: ['img/'] }, /must start with scheme/],
      [{ all: 'yes' }, /all must be true or false/],
      ['[1]', /JSON object/],
    ] as const) {
      const response = await edge.call('POST', '/purge', body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match(JSON.parse(response.text).error, reason);
    }
    assert.equal((await edge.call('GET', '/purge')).status, 405);
    // Fastly-Soft-Purge alone says how, not what: the same empty purge, not a JSON error.
    const soft = await request(`${edge.admin}/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'fastly-soft-purge': '1' },
    });
    assert.equal(soft.status, 400);
    assert.match(JSON.parse(soft.text).error, /empty purge/);
  });

  it('counts purges in /metrics and shows the sequence in /stats', async () => {
    const { sequence } = await edge.purge({ tags: ['metrics'] });
    const metrics = await edge.call('GET', '/metrics');
    assert.match(metrics.text, /strata_purges_total\{mode="hard",source="api"\} \d+/);
    assert.match(metrics.text, new RegExp(`strata_purge_sequence ${sequence}`));
    const stats = JSON.parse((await edge.call('GET', '/stats')).text);
    assert.equal(stats.purge.sequence, sequence);
    assert.equal(typeof stats.store.entries, 'number');
  });
});

describe('purge of a URL whose site keys a filtered query (cacheKey.query)', () => {
  const PATH = `/api/catalogue/${'autumn-jackets-'.repeat(6)}list`;
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({ [PATH]: cached('list') });
    edge = await startAdminNode({
      origin: origin.url,
      config: {
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['origin'],
            rules: [{ match: { path: '/api/' }, cacheKey: { query: { exclude: ['utm_*'], sort: true } } }],
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('purges the URL as clients request it: the query filtered and sorted as the key is', async () => {
    const asRequested = `${PATH}?page=2&colour=blue&utm_source=newsletter`;
    // utm_source is left out of the key and looked for in the body: `stored` is not said at once.
    assert.match(
      String((await edge.get(asRequested)).headers['cache-status']),
      /^strata; fwd=\w*miss; fwd-status=200/,
    );
    assert.match(
      String((await edge.get(`${PATH}?colour=blue&page=2`)).headers['cache-status']),
      /^strata; hit/,
    );
    const inspect = await edge.call('GET', `/cache?url=${encodeURIComponent(`${edge.base}${asRequested}`)}`);
    assert.equal(inspect.status, 200, 'what the purge would match is shown');
    const result = await edge.purge({ urls: [`${edge.base}${asRequested}`] });
    assert.equal(result.purged, 1);
    assert.equal(result.warning, undefined);
    assert.match(String((await edge.get(asRequested)).headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count(), 2);
  });
});
