/**
 * Tiers: the client a shield's site security judges is the one the edge judged — behind the
 * edge's load balancer (proxy.trustedProxies) and through a middle tier too, not the last hop of
 * X-Forwarded-For (the balancer, or the edge below the middle tier). docs/tiers.md, Child →
 * parent trust.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signTier } from '../../src/http/tier-auth.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const SECRET = 'fleet-secret-for-tier-client-0123456789';
const LONG = `/account/orders/2026/${'history-page-'.repeat(6)}summary/${'9'.repeat(24)}.json`;
const HOST = { host: 'shop.example.com' };
/** The edge's load balancer: the edge's only trusted proxy. */
const BALANCER = '127.0.0.2';

function parentOf(via: string, id: string, url: string, proxy: Record<string, unknown> = {}) {
  return {
    proxy: { via, ...proxy },
    tiers: { id, secret: SECRET },
    origins: [{ name: 'parent', url, tier: 'parent' as const, connectTimeout: 2000 }],
    sites: [{ name: 'default', hosts: ['*'], origins: ['parent'] }],
  };
}

describe("tiers: a shield judges the client the edge judged, behind the edge's balancer and a middle tier", () => {
  let origin: TestOrigin;
  let shield: TestNode;
  let middle: TestNode;
  let edge: TestNode;
  let outer: TestNode;

  before(async () => {
    origin = await startOrigin();
    origin.route(LONG, (_req, res) => {
      res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'application/json' });
      res.end('{"every":"request reaches the shield"}');
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
            security: {
              rateLimit: { requestsPerSecond: 1, burst: 1 },
              deny: ['203.0.113.66/32', '127.0.0.4/32'],
            },
          },
        ],
      },
    });
    // An edge behind a load balancer, straight under the shield.
    edge = await startNode({
      origin: shield.url,
      config: parentOf('edge-a', 'edge-a', shield.url, { trustedProxies: [`${BALANCER}/32`] }),
    });
    // An edge under a middle tier under the shield.
    middle = await startNode({ origin: shield.url, config: parentOf('middle', 'middle-1', shield.url) });
    outer = await startNode({ origin: middle.url, config: parentOf('edge-b', 'edge-b', middle.url) });
  });

  after(async () => {
    await Promise.all([edge?.close(), outer?.close()]);
    await middle?.close();
    await shield?.close();
    await origin?.close();
  });

  it('refuses a denied client behind the balancer, and gives each client behind it its own budget', async () => {
    const via = (client: string, n: number) =>
      edge.get(`${LONG}?n=${n}`, { headers: { ...HOST, 'x-forwarded-for': client }, localAddress: BALANCER });
    const denied = await via('203.0.113.66', 1);
    assert.equal(denied.status, 403, "the shield's deny list names the balancer's client");
    assert.equal(origin.count(`${LONG}?n=1`), 0);
    assert.equal((await via('198.51.100.1', 2)).status, 200);
    assert.equal(
      (await via('198.51.100.2', 3)).status,
      200,
      'another client behind the balancer: its own budget',
    );
    assert.equal((await via('198.51.100.1', 4)).status, 429, 'the same client again, over the shield limit');
    // The origin sees the chain as before, and no tier field.
    const seen = origin.requests.find((r) => r.path === `${LONG}?n=2`)!;
    assert.equal(seen.headers['x-forwarded-for'], `198.51.100.1, ${BALANCER}, 127.0.0.1`);
    assert.equal(seen.headers['strata-client'], undefined);
    assert.equal(seen.headers['strata-tier'], undefined);
  });

  it("judges the edge's client through a middle tier, not the edge", async () => {
    const denied = await outer.get(`${LONG}?n=5`, { headers: HOST, localAddress: '127.0.0.4' });
    assert.equal(denied.status, 403, "the shield's deny list names the outer edge's client");
    assert.equal(origin.count(`${LONG}?n=5`), 0);
    assert.equal((await outer.get(`${LONG}?n=6`, { headers: HOST, localAddress: '127.0.0.5' })).status, 200);
    const other = await outer.get(`${LONG}?n=7`, { headers: HOST, localAddress: '127.0.0.6' });
    assert.equal(other.status, 200, 'two clients of one edge do not share a budget at the shield');
  });

  it('takes a Strata-Tier header only with the Host and Strata-Client it was signed with', async () => {
    const path = `${LONG}?n=10`;
    const denied = '203.0.113.66';
    const signed = (client: string) =>
      signTier(SECRET, 'edge-z', Date.now(), 'GET', path, undefined, { host: HOST.host, client });
    const captured = signed(denied);
    // As a child sends it: the shield judges the client the child names.
    const genuine = await shield.get(path, {
      headers: { ...HOST, 'strata-tier': captured, 'strata-client': denied },
      localAddress: '127.0.0.7',
    });
    assert.equal(genuine.status, 403);
    // Replayed within the skew for another site of the shield: no child's; the peer is judged.
    const replayed = await shield.get(path, {
      headers: { host: 'other-site.example.net', 'strata-tier': captured, 'strata-client': denied },
      localAddress: '127.0.0.8',
    });
    assert.equal(replayed.status, 200);
    // Signed for one client, sent beside another: the same.
    const swapped = await shield.get(path, {
      headers: { ...HOST, 'strata-tier': signed('198.51.100.20'), 'strata-client': denied },
      localAddress: '127.0.0.9',
    });
    assert.equal(swapped.status, 200);
    assert.equal(origin.count(path), 2);
  });

  it('never takes a client-sent Strata-Client for the judged address', async () => {
    // Through the edge, from a peer that is not its balancer: the edge judges the peer.
    const through = await edge.get(`${LONG}?n=8`, {
      headers: { ...HOST, 'strata-client': '198.51.100.9' },
      localAddress: '127.0.0.4',
    });
    assert.equal(through.status, 403);
    // Straight to the shield, without a verified Strata-Tier: the peer is judged.
    const direct = await shield.get(`${LONG}?n=9`, {
      headers: { ...HOST, 'strata-client': '198.51.100.9' },
      localAddress: '127.0.0.4',
    });
    assert.equal(direct.status, 403);
    assert.equal(origin.count(`${LONG}?n=8`), 0);
    assert.equal(origin.count(`${LONG}?n=9`), 0);
  });
});
