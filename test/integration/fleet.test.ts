/**
 * A fleet of real `strata serve` processes on loopback: 4 edges in front of 2 shields in front
 * of one origin (docs/tiers.md). Origin requests are counted by the origin; requests per node
 * by each node's lookup counter. The long runs of the same shapes are in bench/fleet.ts.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { FLEET_HOST, type Fleet, freePort, serveProcess, startFleet } from '../helpers/fleet.ts';
import { delayingRelay, purgeRace, versionedRoute } from '../helpers/fleet-load.ts';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const HOST = { host: FLEET_HOST };
const LONG = `/catalogue/winter-2026/${'collection-'.repeat(7)}item-${'9'.repeat(24)}.json`;

describe('a fleet of 4 edges, 2 shields and one origin, as processes', () => {
  const versions = new Map<string, number>();
  let origin: TestOrigin;
  let fleet: Fleet;
  const relays: Server[] = [];

  before(async () => {
    origin = await startOrigin();
    fleet = await startFleet({
      edges: 4,
      shields: 2,
      origin: origin.url,
      edgesForwardPurges: true,
      // Purges reach the shields 250 ms after the edges: the edge-before-shield race, every time.
      purgePeer: async (admin) => {
        const relay = await delayingRelay(admin, 250);
        relays.push(relay.server);
        return relay.url;
      },
    });
  });

  after(async () => {
    await fleet?.close();
    for (const relay of relays) relay.closeAllConnections();
    await Promise.all(relays.map((relay) => new Promise((resolve) => relay.close(resolve))));
    await origin?.close();
  });

  it('sends one origin request for 1,000 concurrent requests of one cold key spread over the edges', async () => {
    const path = `${LONG}?lang=en&currency=EUR`;
    origin.route(LONG, versionedRoute(versions, 150));
    const sends = Array.from({ length: 1000 }, (_, i) =>
      request(`${fleet.edges[i % 4]!.url}${path}`, { headers: HOST }),
    );
    const responses = await Promise.all(sends);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.equal(response.text, JSON.stringify({ path: LONG, version: 1 }));
    }
    assert.equal(origin.count(path), 1);
  });

  it('sends exactly 100 origin requests for 100 cold keys requested at every edge', async () => {
    const paths = Array.from({ length: 100 }, (_, i) => `/cold/${i}/item.json`);
    for (const path of paths) origin.route(path, versionedRoute(versions, 20));
    const before = origin.count();
    const responses = await Promise.all(
      paths.flatMap((path) => fleet.edges.map((edge) => request(`${edge.url}${path}`, { headers: HOST }))),
    );
    for (const response of responses) assert.equal(response.status, 200);
    assert.equal(origin.count() - before, 100);
    for (const path of paths) assert.equal(origin.count(path), 1, path);
    // Each key lives on one shield: both shields hold some of them.
    const lookups = await Promise.all(fleet.shields.map((s) => s.counter('strata_cache_lookups_total')));
    for (const count of lookups) assert.ok(count > 10, `a shield saw ${count} requests`);
  });

  it('serves no stale object after a purge is acknowledged, at 20 purges/s, purges reaching edges before shields', async () => {
    const paths = Array.from({ length: 8 }, (_, i) => `/hot/${i}/price.json`);
    for (const path of paths) origin.route(path, versionedRoute(versions));
    // Warm: every object at every edge and on its shield.
    await Promise.all(
      paths.flatMap((path) => fleet.edges.map((edge) => request(`${edge.url}${path}`, { headers: HOST }))),
    );
    const bypassesBefore = await fenceBypasses(fleet);
    const result = await purgeRace({
      edges: fleet.edges,
      versions,
      paths,
      durationMs: 2500,
      minRequests: 200,
      minPurges: 40,
      purgesPerSecond: 20,
      concurrency: 8,
    });
    assert.deepEqual(result.staleExamples, []);
    assert.equal(result.stale, 0);
    assert.equal(result.errors, 0);
    assert.ok(result.purges >= 40, `${result.purges} purges`);
    assert.ok(result.requests >= 200, `${result.requests} requests`);
    // The fence was what kept them fresh: shields were asked past their cache.
    assert.ok((await fenceBypasses(fleet)) > bypassesBefore);
  });

  it('moves the keys of a shield killed under load to the other shield, with at most the requests in flight failing', async () => {
    const concurrency = 8;
    const paths = Array.from({ length: 300 }, (_, i) => `/failover/${i}.json`);
    for (const path of paths) origin.route(path, versionedRoute(versions, 5));
    let next = 0;
    let errors = 0;
    let afterKill = 0;
    let errorsLate = 0;
    let killedAt = Number.POSITIVE_INFINITY;
    const client = async () => {
      for (let i = 0; i < 1000 && next < paths.length; i++) {
        const path = paths[next++]!;
        const sent = performance.now();
        const response = await request(`${fleet.edges[next % 4]!.url}${path}`, { headers: HOST }).catch(
          () => undefined,
        );
        if (sent > killedAt) afterKill++;
        if (response?.status !== 200) {
          errors++;
          // Sent over a second after the kill: past the first failures and the ejection.
          if (sent > killedAt + 1000) errorsLate++;
        }
      }
    };
    const load = Promise.all(Array.from({ length: concurrency }, client));
    while (next < 60) await new Promise((resolve) => setTimeout(resolve, 5));
    killedAt = performance.now();
    fleet.shields[0]!.child.kill('SIGKILL');
    await load;
    assert.ok(afterKill > 200, `${afterKill} requests after the kill`);
    assert.ok(errors <= concurrency, `${errors} errors`);
    assert.equal(errorsLate, 0);
    // Every object was fetched from the origin once or, when in flight at the kill, twice at most.
    for (const path of paths) assert.ok(origin.count(path) >= 1 && origin.count(path) <= 2, path);
  });
});

describe('edge → shield → edge, misconfigured as processes', () => {
  let origin: TestOrigin;
  let fleet: Fleet;

  before(async () => {
    origin = await startOrigin();
    fleet = await startFleet({ edges: 0, shields: 0, origin: origin.url });
  });

  after(async () => {
    await fleet?.close();
    await origin?.close();
  });

  it('answers 508 after one request at each node, no amplification', async () => {
    const [edgePort, shieldPort] = [await freePort(), await freePort()];
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    const shieldUrl = `http://127.0.0.1:${shieldPort}`;
    const secret = { secret: 'fleet-secret-for-the-fleet-tests-0123456789' };
    // The shield's "origin" is the edge: a loop.
    const shield = await serveProcess(
      'shield',
      fleet.dir,
      {
        proxy: { via: 'shield' },
        tiers: { id: 'shield', ...secret },
        origins: [{ name: 'back', url: edgeUrl }],
        sites: [{ name: 'shop', hosts: ['*'], origins: ['back'] }],
      },
      await freePort(),
      `127.0.0.1:${shieldPort}`,
    );
    const edge = await serveProcess(
      'edge',
      fleet.dir,
      {
        proxy: { via: 'edge' },
        tiers: { id: 'edge', ...secret },
        origins: [{ name: 'shield', url: shieldUrl, tier: 'parent' }],
        sites: [{ name: 'shop', hosts: ['*'], origins: ['shield'] }],
      },
      await freePort(),
      `127.0.0.1:${edgePort}`,
    );
    try {
      const response = await request(`${edge.url}/loop/item.json`, { headers: HOST });
      assert.equal(response.status, 508);
      assert.equal(await edge.counter('strata_cache_lookups_total'), 2);
      assert.equal(await shield.counter('strata_cache_lookups_total'), 1);
      assert.equal(origin.count(), 0);
    } finally {
      edge.child.kill('SIGKILL');
      shield.child.kill('SIGKILL');
      await Promise.all([edge.exited, shield.exited]);
    }
  });
});

async function fenceBypasses(fleet: Fleet): Promise<number> {
  let total = 0;
  for (const shield of fleet.shields) total += await shield.counter('strata_tier_fence_bypasses_total');
  return total;
}
