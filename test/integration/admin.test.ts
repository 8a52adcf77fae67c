import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/readyz'],
  ['GET', '/metrics'],
  ['GET', '/stats'],
  ['GET', '/cache?url=http://example.test/'],
  ['POST', '/purge', { all: true }],
];

describe('the admin API', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({
      '/page': (req, res) => {
        const gzip = req.headers['accept-encoding'] === 'gzip';
        res.writeHead(200, {
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
          'cache-control': 'max-age=60, stale-while-revalidate=5',
          vary: 'accept-encoding',
          'content-type': 'text/html',
          etag: '"e1"',
          'surrogate-key': 'pages home',
        });
        res.end(gzip ? 'zipped-ish' : 'plain page');
      },
      '/list/a': respond(200, { 'cache-control': 'max-age=60', 'cache-tag': 'listed' }, 'a'),
      '/list/b': respond(200, { 'cache-control': 'max-age=60', 'cache-tag': 'listed' }, 'b'),
      '/list/c': respond(200, { 'cache-control': 'max-age=60' }, 'c'),
    });
    edge = await startAdminNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers GET /healthz without a token', async () => {
    const response = await edge.call('GET', '/healthz', undefined, null);
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.text), { status: 'ok' });
  });

  it('refuses every other route without the bearer token, or with a wrong one, and purges nothing', async () => {
    await edge.get('/list/c');
    for (const [method, path, body] of ROUTES) {
      for (const token of [null, 'wrong-token-wrong-token!!', `${TOKEN}x`]) {
        if (path === '/readyz' && token === null) continue; // a load balancer's check: below
        const response = await edge.call(method, path, body, token);
        assert.equal(response.status, 401, `${method} ${path} with ${token}`);
        assert.equal(response.headers['www-authenticate'], 'Bearer');
      }
    }
    assert.equal(edge.node.purge.log.sequence, 0);
    assert.match(String((await edge.get('/list/c')).headers['cache-status']), /^strata; hit/);
  });

  it('answers a readiness check without a token with the verdict alone, as load balancers send it', async () => {
    const anonymous = await edge.call('GET', '/readyz', undefined, null);
    assert.equal(anonymous.status, 200);
    assert.deepEqual(JSON.parse(anonymous.text), { status: 'ready' });
    assert.equal((await edge.call('GET', '/readyz', undefined, 'wrong-token-wrong-token!!')).status, 401);
    assert.equal((await edge.call('GET', '/readyz')).status, 200);
  });

  it('answers every route with the token', async () => {
    for (const [method, path, body] of ROUTES) {
      const response = await edge.call(method, path, body);
      assert.ok([200, 404].includes(response.status), `${method} ${path}: ${response.status}`);
    }
    assert.equal((await edge.call('GET', '/nowhere')).status, 404);
  });

  it('shows what is stored for a URL: every variant, freshness, tags and size', async () => {
    // The origin's gzip first: a stored identity entry would answer gzip clients itself.
    await edge.get('/page', { headers: { 'accept-encoding': 'gzip' } });
    await edge.get('/page');
    const response = await edge.call('GET', `/cache?url=${encodeURIComponent(`${edge.base}/page`)}`);
    assert.equal(response.status, 200);
    const view = JSON.parse(response.text);
    assert.equal(view.key, `${edge.base}/page`);
    assert.equal(view.variants.length, 2);
    const sizes = view.variants.map((v: { size: number }) => v.size).sort();
    assert.deepEqual(sizes, [10, 10]);
    for (const variant of view.variants) {
      assert.equal(variant.state, 'fresh');
      assert.equal(variant.status, 200);
      assert.deepEqual(variant.tags.sort(), ['home', 'pages']);
      assert.deepEqual(variant.vary, ['accept-encoding']);
      assert.equal(variant.etag, '"e1"');
      assert.equal(variant.contentType, 'text/html');
      assert.equal(variant.staleWhileRevalidate, 5);
      assert.ok(variant.ttl > 50 && variant.ttl <= 60);
    }
    await edge.purge({ urls: [`${edge.base}/page`], soft: true });
    const soft = JSON.parse((await edge.call('GET', `/cache?url=${edge.base}/page`)).text);
    assert.deepEqual(
      soft.variants.map((v: { state: string }) => v.state),
      ['invalidated', 'invalidated'],
    );
    const missing = await edge.call('GET', `/cache?url=${edge.base}/never`);
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.text).variants, []);
    assert.equal((await edge.call('GET', '/cache?url=/relative')).status, 400);
  });

  it('lists stored entries by prefix and by tag, page by page', async () => {
    for (const path of ['/list/a', '/list/b', '/list/c']) await edge.get(path);
    const all = JSON.parse((await edge.call('GET', `/cache?prefix=${edge.base}/list/`)).text);
    assert.deepEqual(
      all.entries.map((e: { url: string }) => e.url),
      ['a', 'b', 'c'].map((x) => `${edge.base}/list/${x}`),
    );
    assert.equal(all.next, undefined);
    const page = JSON.parse((await edge.call('GET', `/cache?prefix=${edge.base}/list/&limit=2`)).text);
    assert.equal(page.entries.length, 2);
    const rest = JSON.parse(
      (await edge.call('GET', `/cache?prefix=${edge.base}/list/&after=${encodeURIComponent(page.next)}`))
        .text,
    );
    assert.deepEqual(
      rest.entries.map((e: { url: string }) => e.url),
      [`${edge.base}/list/c`],
    );
    const tagged = JSON.parse((await edge.call('GET', '/cache?tag=listed')).text);
    assert.equal(tagged.entries.length, 2);
    assert.equal((await edge.call('GET', '/cache?limit=x')).status, 400);
  });

  it('reports store, collapse and purge state in /stats', async () => {
    const stats = JSON.parse((await edge.call('GET', '/stats')).text);
    assert.ok(stats.store.entries >= 1);
    assert.ok(stats.store.bytes > 0);
    // /list/a was stored and not hit yet: nothing in the memory tier; its first hit brings it there.
    const before = stats.store.memoryBytes;
    assert.match(String((await edge.get('/list/a')).headers['cache-status']), /hit/);
    const after = JSON.parse((await edge.call('GET', '/stats')).text);
    assert.ok(after.store.memoryBytes > before, 'the hit body is counted');
    assert.equal(after.store.memoryBodies, stats.store.memoryBodies + 1);
    assert.equal(typeof stats.collapse.pending, 'number');
    assert.deepEqual(stats.purge.peers, []);
    assert.equal(typeof stats.purge.sequence, 'number');
    assert.equal(origin.count('/list/a'), 1);
  });
});

describe('admin listener startup', () => {
  let origin: TestOrigin;
  before(async () => {
    origin = await startOrigin({});
  });
  after(() => origin.close());

  it('refuses to start on a non-loopback address without a token', async () => {
    await assert.rejects(
      startNode({
        origin: origin.url,
        config: { admin: { enabled: true, listen: '0.0.0.0:0' }, logging: { level: 'silent' } },
      }),
      /admin.token is required/,
    );
  });

  it('shows latencyMs null in /stats for an origin not asked yet, and the estimate once it answered', async () => {
    const edge = await startAdminNode({ origin: origin.url });
    try {
      const latency = async () =>
        (
          JSON.parse((await edge.call('GET', '/stats')).text) as {
            sites: Array<{ origins: Array<{ latencyMs: unknown }> }>;
          }
        ).sites[0]!.origins[0]!.latencyMs;
      assert.equal(await latency(), null, 'present, and null: no sample yet');
      await edge.get(`/${'catalogue-page-'.repeat(8)}first-request?with=query`);
      assert.equal(typeof (await latency()), 'number');
    } finally {
      await edge.close();
    }
  });

  it('answers 401 on loopback when no token is configured', async () => {
    const edge = await startAdminNode({ origin: origin.url, admin: { token: undefined } });
    try {
      const response = await edge.call('POST', '/purge', { all: true }, null);
      assert.equal(response.status, 401);
      assert.match(response.text, /no admin token configured/);
      assert.equal((await edge.call('GET', '/healthz', undefined, null)).status, 200);
    } finally {
      await edge.close();
    }
  });
});
