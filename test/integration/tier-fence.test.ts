/**
 * The purge fence between tiers (docs/tiers.md): a purge that reaches an edge before its shield
 * never lets the edge refetch the purged object from the shield's cache. Real nodes on loopback,
 * edge → shield → origin, one injected clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signTier } from '../../src/http/tier-auth.ts';
import type { PurgeCommand } from '../../src/purge/command.ts';
import { createClock } from '../helpers/clock.ts';
import { request, type TestResponse } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const SECRET = 'fleet-secret-for-the-fence-0123456789abcdef';
const HOST = { host: 'shop.example.com' };
const LONG = `/catalogue/autumn-2026/${'collection-'.repeat(8)}item-${'7'.repeat(20)}.json`;

/** A route answering the current version of an object: tests bump it, then purge. */
function versioned(versions: Map<string, number>, name: string, headers: Record<string, string> = {}): Route {
  return (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=300', 'content-type': 'application/json', ...headers });
    res.end(`${name} v${versions.get(name) ?? 1}`);
  };
}

function urlPurge(path: string): PurgeCommand {
  return { urls: [`http://shop.example.com${path}`], prefixes: [], tags: [], all: false, soft: false };
}

function member(response: TestResponse, name: string): string {
  return (
    String(response.headers['cache-status'] ?? '')
      .split(',')
      .map((m) => m.trim())
      .find((m) => m.startsWith(`${name};`)) ?? ''
  );
}

describe('the purge fence: a purge that reaches the edge before the shield', () => {
  const clock = createClock();
  const versions = new Map<string, number>();
  let origin: TestOrigin;
  let shield: TestNode;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin();
    shield = await startNode({
      origin: origin.url,
      now: clock.now,
      config: { proxy: { via: 'shield' }, tiers: { id: 'shield-1', secret: SECRET } },
    });
    edge = await startNode({
      origin: shield.url,
      now: clock.now,
      config: {
        proxy: { via: 'edge' },
        tiers: { id: 'edge-1', secret: SECRET },
        origins: [{ name: 'shield', url: shield.url, tier: 'parent' as const, connectTimeout: 2000 }],
        sites: [{ name: 'default', hosts: ['*'], origins: ['shield'] }],
      },
    });
  });

  after(async () => {
    await edge?.close();
    await shield?.close();
    await origin?.close();
  });

  /** Caches `path` at both tiers (version 1) and returns it. */
  async function warm(path: string, name: string, headers: Record<string, string> = {}): Promise<void> {
    origin.route(path.split('?')[0]!, versioned(versions, name, headers));
    const first = await edge.get(path, { headers: HOST });
    assert.equal(first.text, `${name} v1`);
    assert.match(member(await edge.get(path, { headers: HOST }), 'edge'), /^edge; hit/);
  }

  it('refetches past the shield, which has not applied the purge, and never serves the old object', async () => {
    const path = `${LONG}?size=xl`;
    await warm(path, 'jacket');
    assert.equal(origin.count(path), 1);
    versions.set('jacket', 2);
    // The purge reaches the edge only (the shield gets it later, or never).
    await edge.node.purge.purge(urlPurge(path));
    const after = await edge.get(path, { headers: HOST });
    assert.equal(after.status, 200);
    assert.equal(after.text, 'jacket v2');
    assert.equal(member(after, 'shield'), 'shield; fwd=bypass; fwd-status=200; stored; detail=fence');
    assert.match(member(after, 'edge'), /^edge; fwd=miss; fwd-status=200; stored/);
    assert.equal(origin.count(path), 2);
    // The fence never reaches the origin. The shield stored what it fetched (begun after the
    // edge applied the purge: new), so its other clients get it too.
    const seen = origin.requests.filter((r) => r.path === path).at(-1)!;
    assert.equal(seen.headers['strata-fence'], undefined);
    assert.equal(seen.headers['strata-tier'], undefined);
    // Once its commit is made: until then the shield's other clients get the entry it replaces
    // (fresh by its own headers), up to cache.commitDelay.
    await shield.node.idle();
    const direct = await shield.get(path, { headers: HOST });
    assert.equal(direct.text, 'jacket v2');
    assert.match(member(direct, 'shield'), /^shield; hit/);
    // The edge stored the new object: hits, no more origin requests.
    const hit = await edge.get(path, { headers: HOST });
    assert.equal(hit.text, 'jacket v2');
    assert.match(member(hit, 'edge'), /^edge; hit/);
    assert.equal(origin.count(path), 2);
    assert.equal(await counter(shield), 1);
  });

  it('uses the shield again once it applied the same purge, forwarded with its origin', async () => {
    const path = '/fence/forwarded';
    await warm(path, 'scarf');
    versions.set('scarf', 2);
    const result = await edge.node.purge.purge(urlPurge(path));
    // What the fan-out sends: the purge's origin (the edge, its sequence) travels with it.
    const origin1 = { node: edge.node.purge.nodeId, sequence: result.sequence };
    await shield.node.purge.purge(urlPurge(path), {
      node: edge.node.purge.nodeId,
      sequence: result.sequence,
      path: [edge.node.purge.nodeId],
      origin: origin1,
    });
    assert.equal(shield.node.purge.appliedFrom(origin1.node), origin1.sequence);
    const after = await edge.get(path, { headers: HOST });
    assert.equal(after.text, 'scarf v2');
    // The fence is met: an ordinary miss at the shield, which stores the new object.
    assert.match(member(after, 'shield'), /^shield; fwd=miss; fwd-status=200/);
    assert.match(member(await shield.get(path, { headers: HOST }), 'shield'), /^shield; hit/);
    // The same purge coming back by another way (another sender, same origin) is applied once.
    const again = await shield.node.purge.purge(urlPurge(path), {
      node: 'another-edge',
      sequence: 41,
      path: ['another-edge'],
      origin: origin1,
    });
    assert.equal(again.purged, 0);
    assert.match(member(await shield.get(path, { headers: HOST }), 'shield'), /^shield; hit/);
  });

  it('names a purge only for keys it may cover: other keys still hit at the shield', async () => {
    const path = '/fence/other-key';
    origin.route(path, versioned(versions, 'belt'));
    await shield.get(path, { headers: HOST });
    await edge.node.purge.purge(urlPurge('/fence/some-other-object'));
    const response = await edge.get(path, { headers: HOST });
    assert.equal(response.text, 'belt v1');
    assert.match(member(response, 'shield'), /^shield; hit/);
    assert.equal(origin.count(path), 1);
  });

  it('does not let a fenced request follow a fill the shield started before the purge', async () => {
    const path = '/fence/slow-fill';
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    origin.route(path, async (_req, res, hit) => {
      const body = hit === 1 ? 'coat v1' : 'coat v2';
      if (hit === 1) await held;
      res.writeHead(200, { 'cache-control': 'max-age=300' });
      res.end(body);
    });
    // A client of the shield starts a fill of the old object; the origin holds it back.
    const old = request(`${shield.url}${path}`, { headers: HOST });
    for (let i = 0; i < 100 && origin.count(path) === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(origin.count(path), 1);
    await edge.node.purge.purge(urlPurge(path));
    const fenced = await edge.get(path, { headers: HOST });
    assert.equal(fenced.text, 'coat v2');
    assert.match(member(fenced, 'shield'), /^shield; fwd=bypass/);
    release();
    assert.equal((await old).text, 'coat v1');
    await shield.node.idle();
    assert.equal(origin.count(path), 2);
    assert.equal((await edge.get(path, { headers: HOST })).text, 'coat v2');
  });

  it('fences every key after a tag purge (the edge cannot tell what a tag covers)', async () => {
    const path = '/fence/tagged';
    await warm(path, 'boots', { 'surrogate-key': 'shoes' });
    versions.set('boots', 2);
    await edge.node.purge.purge({ urls: [], prefixes: [], tags: ['shoes'], all: false, soft: false });
    const after = await edge.get(path, { headers: HOST });
    assert.equal(after.text, 'boots v2');
    assert.match(member(after, 'shield'), /detail=fence/);
  });

  it('fences a soft purge too: the revalidation goes past the shield, which would confirm its copy', async () => {
    const path = '/fence/soft';
    await warm(path, 'socks', { etag: '"socks-1"' });
    // The object changes at the origin, and so does its strong entity tag (RFC 9110 §8.8.3): the
    // shield's own copy would still confirm the edge's '"socks-1"'; the origin does not.
    versions.set('socks', 2);
    origin.route(path, versioned(versions, 'socks', { etag: '"socks-2"' }));
    await edge.node.purge.purge({ ...urlPurge(path), soft: true });
    const after = await edge.get(path, { headers: HOST });
    assert.equal(after.text, 'socks v2');
    assert.match(member(after, 'shield'), /^shield; fwd=bypass; fwd-status=200; stored; detail=fence/);
    assert.equal(origin.count(path), 2);
  });

  it('stops naming a purge after tiers.fenceWindow: a shield that never gets it is bypassed that long only', async () => {
    const path = '/fence/window';
    origin.route(path, versioned(versions, 'hat'));
    await shield.get(path, { headers: HOST });
    await edge.node.purge.purge({ urls: [], prefixes: [], tags: ['hats'], all: false, soft: false });
    assert.match(member(await edge.get(`${path}?a`, { headers: HOST }), 'shield'), /detail=fence/);
    clock.advance(31);
    const later = await edge.get(path, { headers: HOST });
    assert.match(member(later, 'shield'), /^shield; hit/);
    assert.equal(origin.count(path), 1);
  });

  it("ignores and strips a client's fence: unsigned, or not the one the signature covers", async () => {
    const path = '/fence/client';
    origin.route(path, versioned(versions, 'glove'));
    await shield.get(path, { headers: HOST });
    const forged = await request(`${shield.url}${path}`, {
      headers: { ...HOST, 'strata-fence': `${shield.node.purge.nodeId}=999999` },
    });
    assert.match(member(forged, 'shield'), /^shield; hit/);
    // A real child's signature over another fence does not verify: served as any client's.
    const tier = signTier(SECRET, 'edge-9', clock.now(), 'GET', path, 'someone=1');
    const swapped = await request(`${shield.url}${path}`, {
      headers: { ...HOST, 'strata-tier': tier, 'strata-fence': 'someone=2' },
    });
    assert.match(member(swapped, 'shield'), /^shield; hit/);
    const signed = await request(`${shield.url}${path}`, {
      headers: { ...HOST, 'strata-tier': tier, 'strata-fence': 'someone=1' },
    });
    assert.match(member(signed, 'shield'), /^shield; fwd=bypass; fwd-status=200; stored; detail=fence/);
    assert.equal(origin.count(path), 2);
    for (const seen of origin.requests) assert.equal(seen.headers['strata-fence'], undefined);
  });
});

async function counter(node: TestNode): Promise<number> {
  const text = await node.node.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith('strata_tier_fence_bypasses_total '));
  return Number(line?.split(' ')[1] ?? 0);
}

describe('the purge fence through three tiers: edge → middle shield → top shield → origin', () => {
  const clock = createClock();
  const versions = new Map<string, number>();
  let origin: TestOrigin;
  let top: TestNode;
  let middle: TestNode;
  let edge: TestNode;

  function childOf(parent: TestNode, via: string) {
    return {
      proxy: { via },
      tiers: { id: via, secret: SECRET },
      origins: [{ name: 'parent', url: parent.url, tier: 'parent' as const, connectTimeout: 2000 }],
      sites: [{ name: 'default', hosts: ['*'], origins: ['parent'] }],
    };
  }

  before(async () => {
    origin = await startOrigin();
    top = await startNode({
      origin: origin.url,
      now: clock.now,
      config: { proxy: { via: 'top' }, tiers: { id: 'top', secret: SECRET } },
    });
    middle = await startNode({ origin: top.url, now: clock.now, config: childOf(top, 'middle') });
    edge = await startNode({ origin: middle.url, now: clock.now, config: childOf(middle, 'edge') });
  });

  after(async () => {
    await edge?.close();
    await middle?.close();
    await top?.close();
    await origin?.close();
  });

  it('passes the claims the middle tier has not reached on to the top one', async () => {
    const path = '/fence/three-tiers';
    origin.route(path, versioned(versions, 'cap'));
    assert.equal((await edge.get(path, { headers: HOST })).text, 'cap v1');
    versions.set('cap', 2);
    await edge.node.purge.purge(urlPurge(path));
    const response = await edge.get(path, { headers: HOST });
    assert.equal(response.text, 'cap v2');
    assert.equal(member(response, 'top'), 'top; fwd=bypass; fwd-status=200; stored; detail=fence');
    assert.equal(member(response, 'middle'), 'middle; fwd=bypass; fwd-status=200; stored; detail=fence');
    assert.equal(origin.count(path), 2);
    // Another purge, which reaches the top tier (forwarded, same origin) but not the middle one.
    versions.set('cap', 3);
    const second = await edge.node.purge.purge(urlPurge(path));
    const own = { node: edge.node.purge.nodeId, sequence: second.sequence };
    await top.node.purge.purge(urlPurge(path), { ...own, path: [own.node], origin: own });
    const third = await edge.get(path, { headers: HOST });
    assert.equal(third.text, 'cap v3');
    assert.equal(member(third, 'middle'), 'middle; fwd=bypass; fwd-status=200; stored; detail=fence');
    // The top tier has reached the claim the middle one passed on: an ordinary miss there.
    assert.equal(member(third, 'top'), 'top; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count(path), 3);
  });
});
