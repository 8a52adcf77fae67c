/**
 * Tiers: real nodes chained edge → shield → origin on loopback, each with its own LMDB
 * directory, one injected clock for all (docs/tiers.md).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { createClock, type TestClock } from '../helpers/clock.ts';
import { request, type TestResponse } from '../helpers/http.ts';
import { snapshot } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const SECRET = 'fleet-secret-for-tiers-0123456789abcdef';
const LONG = `/catalogue/spring-2026/${'collection-'.repeat(6)}hero/item-${'4'.repeat(24)}.json`;
const QUERY = '?lang=en&currency=EUR&ref=newsletter-march-2026&utm_campaign=spring-collection-launch';

function dated(clock: TestClock, headers: Record<string, string>, body: string): Route {
  return (_req, res) => {
    res.writeHead(200, {
      date: new Date(clock.now()).toUTCString(),
      'content-type': 'application/json',
      ...headers,
    });
    res.end(body);
  };
}

/** The site's name, as clients of every edge send it: the shield keys what edges forward by it. */
const HOST = { host: 'shop.example.com' };

function members(response: TestResponse): string[] {
  return String(response.headers['cache-status'] ?? '')
    .split(',')
    .map((member) => member.trim());
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Requests counted by a node's lookup counter (every request is logged once). */
async function handled(registry: Registry): Promise<number> {
  let total = 0;
  for (const [name, value] of await snapshot(registry))
    if (name.startsWith('strata_cache_lookups_total')) total += value;
  return total;
}

function edgeConfig(via: string, id: string, shieldUrl: string) {
  return {
    proxy: { via },
    tiers: { id, secret: SECRET },
    origins: [{ name: 'shield', url: shieldUrl, tier: 'parent' as const, connectTimeout: 2000 }],
    sites: [{ name: 'default', hosts: ['*'], origins: ['shield'] }],
  };
}

describe('tiers: two edges, one shield, one origin', () => {
  const clock = createClock();
  let origin: TestOrigin;
  let shield: TestNode;
  let edgeA: TestNode;
  let edgeB: TestNode;

  before(async () => {
    origin = await startOrigin();
    shield = await startNode({
      origin: origin.url,
      now: clock.now,
      config: { proxy: { via: 'shield' }, tiers: { id: 'shield-1', secret: SECRET } },
    });
    edgeA = await startNode({
      origin: shield.url,
      now: clock.now,
      config: edgeConfig('edge-a', 'edge-a', shield.url),
    });
    edgeB = await startNode({
      origin: shield.url,
      now: clock.now,
      config: edgeConfig('edge-b', 'edge-b', shield.url),
    });
  });

  after(async () => {
    await Promise.all([edgeA?.close(), edgeB?.close()]);
    await shield?.close();
    await origin?.close();
  });

  it('sends one origin request for 40 concurrent requests of one key over two edges', async () => {
    const path = `${LONG}${QUERY}`;
    origin.route(
      LONG,
      dated(clock, { 'cache-control': 'max-age=60', 'surrogate-key': 'spring hero' }, 'hero item'),
    );
    const sends = Array.from({ length: 40 }, (_, i) =>
      request(`${(i % 2 ? edgeB : edgeA).url}${path}`, { headers: HOST }),
    );
    const responses = await Promise.all(sends);
    await Promise.all([edgeA.node.idle(), edgeB.node.idle(), shield.node.idle()]);
    assert.equal(origin.count(path), 1);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.equal(response.text, 'hero item');
      // Tag headers go to child tiers only, never to clients.
      assert.equal(response.headers['surrogate-key'], undefined);
    }
    const again = await edgeA.get(path, { headers: HOST });
    assert.deepEqual(
      members(again).map((m) => m.split(';')[0]),
      ['edge-a'],
    );
    assert.match(members(again)[0]!, /^edge-a; hit; ttl=\d+$/);
    assert.equal(origin.count(path), 1);
  });

  it('passes Strata-CDN-Cache-Control and tags to a verified child, which stores by them', async () => {
    const path = `${LONG}-targeted${QUERY}`;
    origin.route(
      `${LONG}-targeted`,
      dated(
        clock,
        { 'cache-control': 'max-age=5', 'strata-cdn-cache-control': 'max-age=300', 'cache-tag': 'catalogue' },
        'targeted',
      ),
    );
    const first = await edgeA.get(path, { localAddress: '127.0.0.2', headers: HOST });
    assert.equal(first.status, 200);
    assert.equal(first.headers['strata-cdn-cache-control'], undefined);
    assert.equal(first.headers['cache-tag'], undefined);
    // Origin-most first (RFC 9211): the shield's member, then the edge's.
    const names = members(first).map((m) => m.split(';')[0]);
    assert.deepEqual(names, ['shield', 'edge-a']);
    // Stored at once on both tiers: the signed tier fields are no unkeyed input to scan for.
    assert.equal(members(first)[0], 'shield; fwd=miss; fwd-status=200; stored');
    assert.equal(members(first)[1], 'edge-a; fwd=miss; fwd-status=200; stored');
    // The shield trusted the edge's X-Forwarded-For: the client's address reaches the origin.
    const seen = origin.requests.find((r) => r.path === path)!;
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.2, 127.0.0.1');
    assert.equal(seen.headers['strata-tier'], undefined);
    // One request id from the edge to the origin.
    assert.equal(seen.headers['x-request-id'], first.headers['x-request-id']);
    clock.advance(30);
    // Max-age 5 is long past: only the targeted field (passed by the shield) keeps it fresh at the edge.
    const later = await edgeA.get(path, { headers: HOST });
    assert.match(members(later)[0]!, /^edge-a; hit/);
    assert.equal(origin.count(path), 1);
    // The edge indexed the tag it was given: a tag purge at the edge removes the entry.
    const purged = await edgeA.node.purge.purge({
      urls: [],
      prefixes: [],
      tags: ['catalogue'],
      all: false,
      soft: false,
    });
    assert.equal(purged.purged, 1);
  });

  it('ignores a forged Strata-Tier header: no tier fields, no trusted X-Forwarded-For, no error', async () => {
    const path = `${LONG}-forged${QUERY}`;
    origin.route(
      `${LONG}-forged`,
      dated(clock, { 'cache-control': 'max-age=60', 'strata-cdn-cache-control': 'max-age=60' }, 'forged'),
    );
    const ts = Math.floor(clock.now() / 1000);
    const forged = await shield.get(path, {
      headers: {
        'strata-tier': `id=edge-a; ts=${ts}; sig=${'A'.repeat(43)}`,
        'x-forwarded-for': '203.0.113.9',
        'x-request-id': 'forged-request-id-1',
      },
    });
    assert.equal(forged.status, 200);
    assert.equal(forged.text, 'forged');
    assert.equal(forged.headers['strata-cdn-cache-control'], undefined);
    const seen = origin.requests.find((r) => r.path === path)!;
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['strata-tier'], undefined);
    assert.notEqual(seen.headers['x-request-id'], 'forged-request-id-1');
  });

  it('expires at the edge an object 50 s old at the shield (max-age 60) 10 s later', async () => {
    const path = `${LONG}-aged${QUERY}`;
    origin.route(`${LONG}-aged`, dated(clock, { 'cache-control': 'max-age=60' }, 'aged'));
    assert.equal((await shield.get(path, { headers: HOST })).status, 200);
    clock.advance(50);
    const first = await edgeB.get(path, { headers: HOST });
    assert.equal(first.headers.age, '50');
    assert.match(members(first)[0]!, /^shield; hit; ttl=10/);
    clock.advance(9);
    const fresh = await edgeB.get(path, { headers: HOST });
    assert.match(members(fresh)[0]!, /^edge-b; hit; ttl=1$/);
    assert.equal(fresh.headers.age, '59');
    assert.equal(origin.count(path), 1);
    clock.advance(2);
    const expired = await edgeB.get(path, { headers: HOST });
    assert.doesNotMatch(members(expired).at(-1)!, /^edge-b; hit/);
    assert.match(members(expired).at(-1)!, /fwd=stale/);
    assert.equal(origin.count(path), 2);
  });

  it('never lets the edge store as fresh what the shield serves stale while revalidating', async () => {
    const path = `${LONG}-swr${QUERY}`;
    origin.route(
      `${LONG}-swr`,
      dated(clock, { 'cache-control': 'max-age=60, stale-while-revalidate=600' }, 'swr'),
    );
    assert.equal((await shield.get(path, { headers: HOST })).status, 200);
    clock.advance(5);
    // A soft purge marks the shield's copy stale though it is only 5 s old.
    await shield.node.purge.purge({ urls: [], prefixes: [], tags: [], all: true, soft: true });
    const viaEdge = await edgeA.get(path, { headers: HOST });
    assert.equal(viaEdge.status, 200);
    assert.equal(viaEdge.text, 'swr');
    assert.match(members(viaEdge)[0]!, /^shield; hit/);
    assert.ok(Number(viaEdge.headers.age) >= 60, `Age ${viaEdge.headers.age} shows the stale copy as stale`);
    await shield.node.idle();
    // At the edge the copy is stale at once: never a fresh hit.
    const next = await edgeA.get(path, { headers: HOST });
    // Served under the edge's own stale-while-revalidate, with no freshness left.
    assert.match(members(next).at(-1)!, /^edge-a; hit; ttl=(0|-\d+)$/);
  });
  it('keeps stale-if-error working across tiers, marked stale', async () => {
    const path = `${LONG}-sie${QUERY}`;
    const fresh = dated(clock, { 'cache-control': 'max-age=10, stale-if-error=600' }, '{"sie":1}');
    origin.route(`${LONG}-sie`, (req, res, hit) => {
      if (hit === 1) return fresh(req, res, hit);
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
    });
    assert.equal((await shield.get(path, { headers: HOST })).status, 200);
    clock.advance(20);
    const viaEdge = await edgeB.get(path, { headers: HOST });
    assert.equal(viaEdge.status, 200);
    assert.equal(viaEdge.text, '{"sie":1}');
    assert.match(members(viaEdge)[0]!, /^shield; fwd=stale; fwd-status=503; detail=stale-if-error$/);
    assert.ok(Number(viaEdge.headers.age) >= 10, `Age ${viaEdge.headers.age}`);
    assert.equal(origin.count(path), 2);
    // Stored stale at the edge: the next request is not a fresh hit there.
    const next = await edgeB.get(path, { headers: HOST });
    assert.equal(next.status, 200);
    assert.doesNotMatch(members(next).at(-1)!, /^edge-b; hit; ttl=\d/);
  });

  it("shows the shield's member first on the edge's answer after the shield's 304", async () => {
    const path = `${LONG}-revalidated${QUERY}`;
    const tagged = dated(clock, { 'cache-control': 'max-age=60', etag: '"spring-1"' }, 'revalidated');
    origin.route(`${LONG}-revalidated`, (req, res, hit) => {
      if (req.headers['if-none-match'] !== '"spring-1"') return tagged(req, res, hit);
      res.writeHead(304, { date: new Date(clock.now()).toUTCString(), etag: '"spring-1"' });
      res.end();
    });
    assert.equal((await edgeA.get(path, { headers: HOST })).status, 200);
    clock.advance(61);
    // Stale on both tiers: the edge asks the shield conditionally, the shield asks the origin.
    const revalidated = await edgeA.get(path, { headers: HOST });
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.text, 'revalidated');
    assert.deepEqual(members(revalidated), [
      'shield; fwd=stale; fwd-status=304',
      'edge-a; fwd=stale; fwd-status=304',
    ]);
    assert.equal(origin.count(path), 2);
    // The shield's member is not stored: a hit at the edge shows the edge's alone.
    const hit = await edgeA.get(path, { headers: HOST });
    assert.deepEqual(
      members(hit).map((m) => m.split(';')[0]),
      ['edge-a'],
    );
  });

  it("keeps the shield's stale-if-error member on the edge's answer after the shield's 304", async () => {
    const path = `${LONG}-sie-304${QUERY}`;
    const fresh = dated(clock, { 'cache-control': 'max-age=10, stale-if-error=600', etag: '"sie-2"' }, 'sie');
    origin.route(`${LONG}-sie-304`, (req, res, hit) => {
      if (hit === 1) return fresh(req, res, hit);
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
    });
    assert.equal((await edgeB.get(path, { headers: HOST })).status, 200);
    clock.advance(20);
    // The origin fails: the shield answers the edge's conditional request from its stale copy.
    const viaEdge = await edgeB.get(path, { headers: HOST });
    assert.equal(viaEdge.status, 200);
    assert.equal(viaEdge.text, 'sie');
    assert.deepEqual(members(viaEdge), [
      'shield; fwd=stale; fwd-status=503; detail=stale-if-error',
      'edge-b; fwd=stale; fwd-status=304',
    ]);
    assert.equal(origin.count(path), 2);
  });
});

describe('tiers: every parent down', () => {
  let origin: TestOrigin;
  let direct: TestNode;
  let strict: TestNode;
  const path = `${LONG}-direct${QUERY}`;

  before(async () => {
    origin = await startOrigin();
    origin.route(`${LONG}-direct`, (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/json' });
      res.end('{"direct":true}');
    });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const parents = [
      { name: 'shield-1', url: dead, tier: 'parent' as const, connectTimeout: 500 },
      {
        name: 'shield-2',
        url: `http://127.0.0.1:${await freePort()}`,
        tier: 'parent' as const,
        connectTimeout: 500,
      },
    ];
    direct = await startNode({
      origin: origin.url,
      config: {
        proxy: { via: 'edge-direct' },
        tiers: { secret: SECRET },
        origins: [...parents, { name: 'origin', url: origin.url }],
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['shield-1', 'shield-2'],
            backup: ['origin'],
            goDirect: true,
          },
        ],
      },
    });
    strict = await startNode({
      origin: origin.url,
      config: {
        proxy: { via: 'edge-strict' },
        tiers: { secret: SECRET },
        origins: parents,
        sites: [{ name: 'default', hosts: ['*'], origins: ['shield-1', 'shield-2'] }],
      },
    });
  });

  after(async () => {
    await Promise.all([direct?.close(), strict?.close()]);
    await origin?.close();
  });

  it('goes to the real origin after every parent failed, with goDirect', async () => {
    const response = await direct.get(path, { headers: HOST });
    assert.equal(response.status, 200);
    assert.equal(response.text, '{"direct":true}');
    assert.equal(origin.count(path), 1);
    // The real origin is no tier: it never sees the Strata-Tier header.
    assert.equal(origin.requests.at(-1)!.headers['strata-tier'], undefined);
  });

  it('answers the error without goDirect, never asking the origin', async () => {
    const before = origin.count(path);
    const response = await strict.get(path, { headers: HOST });
    assert.ok(response.status >= 502 && response.status <= 504, String(response.status));
    assert.equal(origin.count(path), before);
  });
});

describe('tiers: a misconfigured loop edge → shield → edge', () => {
  let shield: TestNode;
  let edge: TestNode;

  before(async () => {
    const port = await freePort();
    shield = await startNode({
      origin: `http://127.0.0.1:${port}`,
      config: { proxy: { via: 'shield' }, tiers: { id: 'shield-loop', secret: SECRET } },
    });
    edge = await startNode({
      origin: shield.url,
      config: {
        ...edgeConfig('edge', 'edge-loop', shield.url),
        listeners: [{ listen: `127.0.0.1:${port}` }],
      },
    });
  });

  after(async () => {
    await edge?.close();
    await shield?.close();
  });

  it('answers 508 without amplification', async () => {
    const edgeBefore = await handled(edge.node.metrics.registry);
    const shieldBefore = await handled(shield.node.metrics.registry);
    const response = await edge.get(`${LONG}-loop${QUERY}`);
    await shield.node.idle();
    assert.equal(response.status, 508);
    // The client's request and the one the shield sent back: nothing more anywhere.
    assert.equal((await handled(edge.node.metrics.registry)) - edgeBefore, 2);
    assert.equal((await handled(shield.node.metrics.registry)) - shieldBefore, 1);
  });
});

describe("tiers: a shield's site security judges the edge's client", () => {
  let origin: TestOrigin;
  let shield: TestNode;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin();
    origin.route(LONG, (_req, res) => {
      res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' });
      res.end('every request reaches the shield');
    });
    shield = await startNode({
      origin: origin.url,
      config: {
        proxy: { via: 'shield' },
        tiers: { id: 'shield-1', secret: SECRET },
        origins: [{ name: 'origin', url: origin.url }],
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['origin'],
            security: { rateLimit: { requestsPerSecond: 1, burst: 1 }, deny: ['127.0.0.4/32'] },
          },
        ],
      },
    });
    edge = await startNode({ origin: shield.url, config: edgeConfig('edge-a', 'edge-a', shield.url) });
  });
  after(async () => {
    await edge.close();
    await shield.close();
    await origin.close();
  });

  it("limits each of the edge's clients by its own address, and refuses a denied one", async () => {
    const first = await edge.get(`${LONG}?n=1`, { headers: HOST, localAddress: '127.0.0.2' });
    assert.equal(first.status, 200);
    // A relayed answer (no-store) carries each tier's member once, origin-most first.
    assert.deepEqual(members(first), [
      'shield; fwd=miss; fwd-status=200; detail=no-store',
      'edge-a; fwd=miss; fwd-status=200; detail=no-store',
    ]);
    const again = await edge.get(`${LONG}?n=2`, { headers: HOST, localAddress: '127.0.0.2' });
    assert.equal(again.status, 429, 'the same client, over the shield limit');
    const other = await edge.get(`${LONG}?n=3`, { headers: HOST, localAddress: '127.0.0.3' });
    assert.equal(other.status, 200, 'another client of the same edge has its own budget');
    const denied = await edge.get(`${LONG}?n=4`, { headers: HOST, localAddress: '127.0.0.4' });
    assert.equal(denied.status, 403);
    assert.equal(origin.count(`${LONG}?n=3`), 1);
    assert.equal(origin.count(`${LONG}?n=4`), 0);
  });

  it('judges the peer when the X-Forwarded-For does not come from a verified child', async () => {
    // Straight to the shield with a forged X-Forwarded-For: the peer (127.0.0.1) is judged.
    const forged = await shield.get(`${LONG}?n=5`, {
      headers: { ...HOST, 'x-forwarded-for': '127.0.0.9' },
      localAddress: '127.0.0.4',
    });
    assert.equal(forged.status, 403);
  });
});

describe("tiers: a shield scans what its verified edge's forwarding claims bring back", () => {
  const PAGE = `/storefront/${'landing-page-'.repeat(6)}index.html`;
  let origin: TestOrigin;
  let shield: TestNode;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin();
    // A framework building its script URL from X-Forwarded-Host, as behind a proxy.
    origin.route(PAGE, (req, res) => {
      const host = req.headers['x-forwarded-host'] ?? 'shop.example.com';
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/html' });
      res.end(`<script src="https://${host}/app.js"></script>`);
    });
    shield = await startNode({
      origin: origin.url,
      config: { proxy: { via: 'shield' }, tiers: { id: 'shield-1', secret: SECRET } },
    });
    const config = edgeConfig('edge-a', 'edge-a', shield.url);
    // The edge's balancer (127.0.0.2) is trusted: its X-Forwarded-Host goes on to the shield.
    edge = await startNode({
      origin: shield.url,
      config: { ...config, proxy: { ...config.proxy, trustedProxies: ['127.0.0.2'] } },
    });
  });
  after(async () => {
    await edge.close();
    await shield.close();
    await origin.close();
  });

  it('stores at neither tier a page reflecting a claim the edge passed on', async () => {
    const poisoned = await edge.get(PAGE, {
      headers: { ...HOST, 'x-forwarded-host': 'evil.example' },
      localAddress: '127.0.0.2',
    });
    assert.match(poisoned.text, /evil\.example/);
    const clean = await edge.get(PAGE, { headers: HOST, localAddress: '127.0.0.3' });
    assert.equal(clean.text, '<script src="https://shop.example.com/app.js"></script>');
    assert.equal(origin.count(PAGE), 2, 'the clean request reached the origin: nothing poisoned was stored');
  });
});

/** An edge of `hosts` in front of a shield answering shop.example.com only, its check given `host`. */
function shieldChecks(title: string, hosts: string[], host?: string): void {
  describe(title, () => {
    let origin: TestOrigin;
    let shield: TestNode;
    let edge: TestNode;
    const path = `${LONG}-checked${QUERY}`;

    before(async () => {
      origin = await startOrigin({
        '/health': (_req, res) => {
          res.writeHead(200, { 'cache-control': 'no-store' });
          res.end('ok');
        },
      });
      origin.route(`${LONG}-checked`, (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/json' });
        res.end('{"checked":true}');
      });
      // As docs/tiers.md sets it up: the shield answers the site's host only.
      shield = await startNode({
        origin: origin.url,
        config: {
          proxy: { via: 'shield-1' },
          tiers: { id: 'shield-1', secret: SECRET },
          sites: [{ name: 'shop', hosts: ['shop.example.com'], origins: ['origin'] }],
        },
      });
      edge = await startNode({
        origin: origin.url,
        config: {
          proxy: { via: 'edge-1' },
          tiers: { id: 'edge-1', secret: SECRET },
          origins: [
            { name: 'shield-1', url: shield.url, tier: 'parent', connectTimeout: 2000 },
            { name: 'origin', url: origin.url },
          ],
          sites: [
            {
              name: 'shop',
              hosts,
              origins: ['shield-1'],
              backup: ['origin'],
              goDirect: true,
              healthCheck: {
                path: '/health',
                interval: 20,
                timeout: 1000,
                unhealthy: 2,
                ...(host ? { host } : {}),
              },
            },
          ],
        },
      });
    });
    after(async () => {
      await edge?.close();
      await shield?.close();
      await origin?.close();
    });

    it('keeps a serving shield healthy and sends the traffic through it, not straight to the origin', async () => {
      const state = async () =>
        (await snapshot(edge.node.metrics.registry)).get('strata_origin_state{origin="shield-1"}');
      // Probes answered (through the shield) or the shield marked unhealthy (3), whichever comes first.
      assert.ok(await until(async () => origin.count('/health') >= 3 || (await state()) === 3, 3000));
      assert.equal(await state(), 0, 'the shield is healthy');
      const response = await edge.get(path, { headers: HOST });
      assert.equal(response.status, 200);
      assert.deepEqual(
        members(response).map((member) => member.split(';')[0]),
        ['shield-1', 'edge-1'],
      );
      assert.equal(origin.count(path), 1);
      assert.equal(origin.requests.findLast((r) => r.path === path)!.headers.via, '1.1 edge-1, 1.1 shield-1');
    });
  });
}

shieldChecks("tiers: an edge's health checks of its shield", ['shop.example.com']);
shieldChecks(
  "tiers: an edge's health checks of its shield, for a site of wildcard hosts, with healthCheck.host",
  ['*.example.com'],
  'shop.example.com',
);
