/**
 * Tiers: a shield keys a verified child's request by the scheme its client used (the child's
 * X-Forwarded-Proto), as the child does (docs/tls.md, Cache keys: http and https). Keyed by its
 * own plain listener instead, the shield served an https client the redirect to https it had
 * stored for an http client: a redirect loop, stored at the edge too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const SECRET = 'fleet-secret-for-tier-scheme-0123456789';
const LONG = `/checkout/basket/2026/${'step-'.repeat(12)}review/${'7'.repeat(24)}`;
const HOST = 'shop.example.com';
/** The edge's TLS-terminating load balancer: the edge's only trusted proxy. */
const BALANCER = '127.0.0.2';

/** Redirects plain http to https (as many origins do, from X-Forwarded-Proto); answers https. */
const secureOnly: Route = (req, res) => {
  if (req.headers['x-forwarded-proto'] !== 'https') {
    res.writeHead(301, { location: `https://${req.headers.host}${req.url}`, 'cache-control': 'max-age=60' });
    res.end('moved');
    return;
  }
  res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
  res.end('the basket, over https');
};

describe('tiers: the shield keys by the scheme the edge keyed by', () => {
  let origin: TestOrigin;
  let shield: TestNode;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin();
    shield = await startNode({
      origin: origin.url,
      config: { proxy: { via: 'shield' }, tiers: { id: 'shield-1', secret: SECRET } },
    });
    edge = await startNode({
      origin: shield.url,
      config: {
        proxy: { via: 'edge-a', trustedProxies: [`${BALANCER}/32`] },
        tiers: { id: 'edge-a', secret: SECRET },
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

  const overHttps = (path: string) =>
    edge.get(path, {
      headers: { host: HOST, 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.7' },
      localAddress: BALANCER,
    });
  const overHttp = (path: string) => edge.get(path, { headers: { host: HOST } });

  it('answers an https client with the page after an http client got the redirect', async () => {
    const path = `${LONG}?order=http-first`;
    origin.route(path, secureOnly);
    const plain = await overHttp(path);
    assert.equal(plain.status, 301);
    const secure = await overHttps(path);
    assert.equal(secure.status, 200, 'not the redirect stored for http clients');
    assert.equal(secure.text, 'the basket, over https');
    assert.match(
      String(secure.headers['cache-status']),
      /^shield; fwd=miss; fwd-status=200; stored, edge-a; fwd=miss/,
    );
    assert.equal(origin.count(path), 2);
    // Each scheme's answer is then a hit at both tiers.
    assert.equal((await overHttps(path)).status, 200);
    assert.equal((await overHttp(path)).status, 301);
    assert.equal(origin.count(path), 2);
  });

  it('answers an http client with the redirect after an https client got the page', async () => {
    const path = `${LONG}?order=https-first`;
    origin.route(path, secureOnly);
    assert.equal((await overHttps(path)).status, 200);
    const plain = await overHttp(path);
    assert.equal(plain.status, 301, 'not the page stored for https clients');
    assert.equal(plain.headers.location, `https://${HOST}${path}`);
    assert.equal(origin.count(path), 2);
  });

  it("keeps keying a non-child's request by the shield's own listener", async () => {
    // Straight to the shield: a client's X-Forwarded-Proto is not trusted, the key is http.
    const path = `${LONG}?order=direct`;
    origin.route(path, secureOnly);
    const forged = await shield.get(path, { headers: { host: HOST, 'x-forwarded-proto': 'https' } });
    assert.equal(forged.status, 301);
    assert.equal((await overHttp(path)).status, 301);
    assert.equal(origin.count(path), 1, "the edge's http request is a hit at the shield");
  });
});
