/**
 * Two users asking for the same URL at once must never get each other's page: a follower
 * takes the leader's response only when it is fresh for it, and then only the header set a
 * stored copy has; a response without explicit freshness is never reused across requests.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request, type TestResponse } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

/** A path over 100 characters, as real pages have. */
const long = (name: string) =>
  `/account/${name}/${'settings-and-preferences-'.repeat(5)}page?session=1&x=${'q'.repeat(20)}`;

/** Answers the first request only once released (the origin is "slow"); later ones at once. */
interface Gate {
  release(): void;
}

describe("collapsing never hands one user another user's page", () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const gates = new Map<string, Promise<void>>();
  const releases = new Map<string, () => void>();

  function gate(path: string): Gate {
    const { promise, resolve } = Promise.withResolvers<void>();
    gates.set(path, promise);
    releases.set(path, resolve);
    return { release: resolve };
  }

  /** A page for the user named in the Cookie, with the given header fields. */
  function personal(headers: Record<string, string>) {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      const held = gates.get(path);
      gates.delete(path);
      if (held) await held;
      const user = String(req.headers.cookie ?? 'nobody');
      res.writeHead(headers[':status'] ? Number(headers[':status']) : 200, {
        'content-type': 'text/html',
        ...Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith(':'))),
        'set-cookie': `session=${user}-secret`,
      });
      res.end(`page of ${user}`);
    };
  }

  async function reached(check: () => boolean, ms = 2000): Promise<void> {
    assert.ok(await until(check, ms, 2), 'condition not reached in time');
  }

  /** User a asks first and is held at the origin; user b asks while a's fetch runs. */
  async function pair(
    path: string,
    bHeaders: Record<string, string> = {},
  ): Promise<[TestResponse, TestResponse]> {
    const g = gate(path);
    const before = origin.count(path);
    const a = request(`${edge.url}${path}`, { headers: { cookie: 'user=a' } });
    await reached(() => origin.count(path) === before + 1);
    const b = request(`${edge.url}${path}`, { headers: { cookie: 'user=b', ...bHeaders } });
    await reached(() => edge.node.edge.collapse.waiters >= 1);
    g.release();
    const both = await Promise.all([a, b]);
    await edge.node.idle();
    return both;
  }

  function assertOwnPages(path: string, [a, b]: [TestResponse, TestResponse], originRequests: number) {
    assert.equal(a.text, 'page of user=a');
    assert.equal(b.text, 'page of user=b', `b got ${b.text} (${b.headers['cache-status']})`);
    assert.equal(String(b.headers['set-cookie']), 'session=user=b-secret');
    assert.equal(origin.count(path), originRequests);
    assert.doesNotMatch(String(b.headers['cache-status']), /collapsed|; hit/);
  }

  const zeroFreshness: Record<string, Record<string, string>> = {
    'no-cache-headers': {},
    'max-age-0': { 'cache-control': 'max-age=0' },
    'max-age-0-must-revalidate': { 'cache-control': 'max-age=0, must-revalidate' },
    's-maxage-0': { 'cache-control': 's-maxage=0' },
    'heuristic-404': { ':status': '404', 'last-modified': new Date(Date.now() - 1000).toUTCString() },
  };

  before(async () => {
    origin = await startOrigin();
    for (const name of Object.keys(zeroFreshness)) {
      // Set-Cookie is private to the user here, so such a response would be stored without it.
      const headers = { ...zeroFreshness[name]! };
      headers['cache-control'] = [headers['cache-control'], 'private="set-cookie"']
        .filter(Boolean)
        .join(', ');
      origin.route(long(name).split('?')[0]!, personal(headers));
    }
    origin.route('/shared-cookie', personal({ 'cache-control': 'max-age=60, private="set-cookie"' }));
    origin.route(
      long('no-cache-field').split('?')[0]!,
      personal({ 'cache-control': 'max-age=60, no-cache="set-cookie"' }),
    );
    origin.route('/stale-personal', personal({ 'cache-control': 'private="set-cookie"' }));
    origin.route(long('grace').split('?')[0]!, personal({ 'cache-control': 'private="set-cookie"' }));
    origin.route(
      long('static.css').split('?')[0]!,
      personal({
        'cache-control': 'private="set-cookie"',
        'last-modified': new Date(Date.now() - 30 * 86_400_000).toUTCString(),
      }),
    );
    origin.route(
      long('public.js').split('?')[0]!,
      personal({
        'cache-control': 'public, private="set-cookie"',
        'last-modified': new Date(Date.now() - 30 * 86_400_000).toUTCString(),
      }),
    );
    edge = await startNode({
      origin: origin.url,
      config: { sites: [{ name: 'default', hosts: ['*'], origins: ['origin'], grace: '30s' }] },
    });
  });
  after(async () => {
    for (const release of releases.values()) release();
    await edge.close();
    await origin.close();
  });

  for (const name of Object.keys(zeroFreshness)) {
    it(`releases the follower to fetch on its own when the leader's response has zero freshness (${name})`, async () => {
      const path = long(name);
      assert.ok(path.length > 100);
      assertOwnPages(path, await pair(path), 2);
    });
  }

  it('gives a follower the stored header set: no Set-Cookie stripped by private="set-cookie"', async () => {
    const [a, b] = await pair('/shared-cookie');
    assert.equal(a.text, 'page of user=a');
    assert.equal(b.text, 'page of user=a'); // a shared page: the origin said only the cookie is private
    assert.equal(b.headers['set-cookie'], undefined);
    assert.match(String(b.headers['cache-status']), /collapsed/);
    assert.equal(origin.count('/shared-cookie'), 1);
  });

  it('gives a follower the stored header set: no Set-Cookie stripped by no-cache="set-cookie"', async () => {
    const path = long('no-cache-field');
    const [, b] = await pair(path);
    assert.equal(b.headers['set-cookie'], undefined);
    assert.equal(origin.count(path), 1);
  });

  it('never answers a response without explicit freshness from the cache under max-stale', async () => {
    const first = await edge.get('/stale-personal', { headers: { cookie: 'user=a' } });
    assert.equal(first.text, 'page of user=a');
    const second = await edge.get('/stale-personal', {
      headers: { cookie: 'user=b', 'cache-control': 'max-stale=3600' },
    });
    assert.equal(second.text, 'page of user=b');
    assert.equal(String(second.headers['set-cookie']), 'session=user=b-secret');
    assert.doesNotMatch(String(second.headers['cache-status']), /; hit/);
    assert.equal(origin.count('/stale-personal'), 2);
  });

  it('never answers a response without explicit freshness from the cache under a site grace', async () => {
    const path = long('grace');
    const first = await edge.get(path, { headers: { cookie: 'user=a' } });
    assert.equal(first.text, 'page of user=a');
    const second = await edge.get(path, { headers: { cookie: 'user=b' } });
    assert.equal(second.text, 'page of user=b', String(second.headers['cache-status']));
    assert.doesNotMatch(String(second.headers['cache-status']), /; hit/);
    assert.equal(origin.count(path), 2);
  });

  it('gives no heuristic freshness to a response to a request with a Cookie (web cache deception)', async () => {
    const path = long('static.css');
    const first = await edge.get(path, { headers: { cookie: 'user=a' } });
    assert.equal(first.text, 'page of user=a');
    const second = await edge.get(path, { headers: { cookie: 'user=b' } });
    assert.equal(second.text, 'page of user=b', String(second.headers['cache-status']));
    assert.doesNotMatch(String(second.headers['cache-status']), /; hit/);
    assert.equal(origin.count(path), 2);
  });

  it('gives no heuristic freshness to a response to a request with Authorization', async () => {
    const path = long('public.js');
    await edge.get(path, { headers: { authorization: 'Bearer a' } });
    const second = await edge.get(path, { headers: { authorization: 'Bearer b' } });
    assert.doesNotMatch(String(second.headers['cache-status']), /; hit/);
    assert.equal(origin.count(path), 2);
  });
});
