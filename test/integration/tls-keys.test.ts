import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request as undiciRequest } from 'undici';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/catalogue/${'shoes'.repeat(12)}/${'red'.repeat(10)}/item.json?size=${'9'.repeat(20)}&sort=price`;

describe('cache keys on plain and TLS listeners', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let agent: Agent;
  let plainPort: string;
  let tlsPort: string;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('shop', ['shop.test']);
    origin = await startOrigin({
      [LONG]: respond(200, { 'cache-control': 'max-age=300' }, 'item'),
      '/p': respond(200, { 'cache-control': 'max-age=300' }, 'p'),
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          { listen: '127.0.0.1:0' },
          { listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } },
        ],
      },
    });
    plainPort = node.node.addresses[0]!.split(':').pop()!;
    tlsPort = node.node.addresses[1]!.split(':').pop()!;
    agent = new Agent({
      allowH2: true,
      connect: {
        ca: fixtures.ca,
        servername: 'shop.test',
        lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]),
      },
    });
  });

  after(async () => {
    await agent.close();
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  async function viaTls(path: string): Promise<string> {
    const res = await undiciRequest(`https://shop.test:${tlsPort}${path}`, { dispatcher: agent });
    await res.body.text();
    await node.node.idle();
    return String(res.headers['cache-status']);
  }

  async function viaPlain(path: string): Promise<string> {
    const res = await request(`http://127.0.0.1:${plainPort}${path}`, {
      headers: { host: `shop.test:${tlsPort}` },
    });
    await node.node.idle();
    return String(res.headers['cache-status']);
  }

  it('keys an https request with the https scheme, apart from the same URL over http', async () => {
    assert.match(await viaTls(LONG), /fwd=miss/);
    assert.match(await viaTls(LONG), /^strata; hit/);
    assert.match(await viaPlain(LONG), /fwd=miss/);
    assert.equal(origin.count(LONG), 2);
    const keys = [...node.node.store.keys()].filter((k) => k.includes('catalogue'));
    assert.deepEqual(keys.sort(), [
      `http://shop.test:${tlsPort}${LONG}`,
      `https://shop.test:${tlsPort}${LONG}`,
    ]);
  });

  it('purges both schemes of a URL whichever one the operator types', async () => {
    await viaTls('/p');
    await viaPlain('/p');
    assert.equal(origin.count('/p'), 2);
    const result = await node.node.purge.purge({
      urls: [`https://SHOP.test:${tlsPort}/p`],
      prefixes: [],
      tags: [],
      all: false,
      soft: false,
    });
    assert.equal(result.purged, 2);
    assert.match(await viaTls('/p'), /fwd=miss/);
    assert.match(await viaPlain('/p'), /fwd=miss/);
    assert.equal(origin.count('/p'), 4);
  });
});

describe('per-site HSTS and https redirect', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let agent: Agent;
  let plain: string;
  let tlsPort: string;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('secure', ['secure.test', 'open.test']);
    origin = await startOrigin({
      [LONG]: respond(200, { 'cache-control': 'max-age=300' }, 'item'),
      '/missing': respond(404, { 'cache-control': 'no-store' }, 'no'),
    });
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          { listen: '127.0.0.1:0' },
          { listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } },
        ],
        sites: [
          { name: 'secure', hosts: ['secure.test'], origins: ['origin'], hsts: '365d', httpsRedirect: true },
          { name: 'other', hosts: ['*'], origins: ['origin'] },
        ],
      },
    });
    plain = `http://${node.node.addresses[0]}`;
    tlsPort = node.node.addresses[1]!.split(':').pop()!;
    agent = new Agent({
      allowH2: true,
      connect: {
        ca: fixtures.ca,
        servername: 'secure.test',
        lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]),
      },
    });
  });

  after(async () => {
    await agent.close();
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('redirects plain requests of the site to https with 308, keeping the path and query', async () => {
    const res = await request(`${plain}${LONG}`, { headers: { host: 'Secure.Test:8080' } });
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, `https://secure.test${LONG}`);
    assert.equal(res.headers['cache-status'], 'strata; detail=https-redirect');
    assert.equal(res.headers['strict-transport-security'], undefined);
    const other = await request(`${plain}${LONG}`, { headers: { host: 'open.test' } });
    assert.equal(other.status, 200);
    assert.equal(origin.count(LONG), 1);
  });

  it('sends Strict-Transport-Security over TLS on misses, hits and errors of the site only', async () => {
    const get = async (host: string, path: string) => {
      const res = await undiciRequest(`https://${host}:${tlsPort}${path}`, { dispatcher: agent });
      await res.body.text();
      await node.node.idle();
      return res;
    };
    const miss = await get('secure.test', LONG);
    const hit = await get('secure.test', LONG);
    const notFound = await get('secure.test', '/missing');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    for (const res of [miss, hit, notFound])
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
    const open = await get('open.test', LONG);
    assert.equal(open.headers['strict-transport-security'], undefined);
  });
});
