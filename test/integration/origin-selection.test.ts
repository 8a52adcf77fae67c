import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import { sinkInto } from '../helpers/logs.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { writeMmdb } from '../helpers/mmdb.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/catalogue/${'x'.repeat(70)}/item-${'7'.repeat(30)}.json?lang=en&ref=${'r'.repeat(20)}`;

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Answers every path after `ms` (the origin's scripted latency), naming itself in the body. */
function delayed(name: string, ms: number, status = 200, headers: Record<string, string> = {}): Route {
  return (_req, res) => {
    setTimeout(() => {
      res.writeHead(status, { 'cache-control': 'no-store', ...headers });
      res.end(name);
    }, ms);
  };
}

async function scripted(route: Route): Promise<TestOrigin> {
  const origin = await startOrigin();
  // Every path: the helper matches by path, so answer the ones the tests use.
  for (const path of ['/a', '/b', LONG.split('?')[0]!]) origin.route(path, route);
  return origin;
}

describe('origin selection by latency', () => {
  let fast: TestOrigin;
  let mid: TestOrigin;
  let slow: TestOrigin;
  let edge: TestNode;

  before(async () => {
    slow = await scripted(delayed('slow', 200));
    mid = await scripted(delayed('mid', 100));
    fast = await scripted(delayed('fast', 10));
    edge = await startNode({
      origin: fast.url,
      config: {
        origins: [
          { name: 'slow', url: slow.url },
          { name: 'mid', url: mid.url },
          { name: 'fast', url: fast.url },
        ],
        sites: [{ name: 'three', hosts: ['*'], origins: ['slow', 'mid', 'fast'] }],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([fast.close(), mid.close(), slow.close()]);
  });

  it('gives up connecting after 1 s by default when a site has another origin to try', () => {
    const timeouts = edge.node.edge.sites.all[0]!.pool.origins.map((origin) => origin.config.connectTimeout);
    assert.deepEqual(timeouts, [1000, 1000, 1000]);
  });

  it('sends the traffic to the 10 ms origin of three at 200, 100 and 10 ms, after measuring each once', async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await edge.get(i % 2 === 0 ? `/a?i=${i}` : `${LONG}&i=${i}`);
      assert.equal(res.status, 200);
      bodies.push(res.text);
    }
    assert.deepEqual(
      bodies.slice(0, 3),
      ['slow', 'mid', 'fast'],
      'each origin is measured once, in list order',
    );
    assert.equal(slow.count(), 1, 'the 200 ms origin only for its measure');
    // The last 30, once measured: a loaded machine may make a 10 ms answer look slower than
    // 100 ms now and then (a stall of ~370 ms; it is then measured again within a second or
    // two), never 200 ms.
    const settled = bodies.slice(10);
    const fastShare = settled.filter((body) => body === 'fast').length;
    assert.ok(fastShare >= 25, `fast ${fastShare} of 30: ${settled.join(',')}`);
    assert.equal(slow.count() + mid.count() + fast.count(), 40);
  });
});

describe('retries and ejection', () => {
  let live: TestOrigin;
  let unavailable: TestOrigin;
  let edge: TestNode;
  let deadPort: number;

  before(async () => {
    live = await scripted(delayed('live', 1));
    unavailable = await scripted(delayed('unavailable', 0, 503));
    unavailable.route('/retry-after', delayed('unavailable', 0, 503, { 'retry-after': '30' }));
    live.route('/retry-after', delayed('live', 1));
    live.route('/post', delayed('live', 1));
    unavailable.route('/post', delayed('unavailable', 0, 503));
    deadPort = await closedPort();
    edge = await startNode({
      origin: live.url,
      config: {
        origins: [
          { name: 'refusing', url: `http://127.0.0.1:${deadPort}` },
          { name: 'live', url: live.url },
          { name: 'unavailable', url: unavailable.url },
          { name: 'unavailable-too', url: unavailable.url },
        ],
        sites: [
          { name: 'refused', hosts: ['refused.test'], origins: ['refusing', 'live'] },
          {
            name: 'overloaded',
            hosts: ['overloaded.test'],
            origins: ['unavailable', 'live'],
            outlier: { consecutiveFailures: 1000 },
          },
          { name: 'after', hosts: ['after.test'], origins: ['unavailable-too', 'live'] },
          {
            name: 'down',
            hosts: ['down.test'],
            origins: ['unavailable', 'unavailable-too'],
            retry: { budgetPercent: 20, minPerSecond: 0 },
            outlier: { consecutiveFailures: 1000 },
          },
          {
            name: 'rotating',
            hosts: ['rotating.test'],
            origins: ['refusing', 'live'],
            selection: 'round-robin',
            retry: { budgetPercent: 0, minPerSecond: 0 },
            outlier: { consecutiveFailures: 1000 },
          },
          { name: 'standby', hosts: ['standby.test'], origins: ['live'] },
          { name: 'primary-only', hosts: ['fallback.test'], origins: ['refusing'], backup: ['standby'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([live.close(), unavailable.close()]);
  });

  it('drains a refusing origin after one refusal, and no client sees an error', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    for (let i = 0; i < 20; i++) {
      const res = await edge.get(`/a?refused=${i}`, { headers: { host: 'refused.test' } });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'live');
    }
    const delta = await counters.delta();
    assert.equal(
      delta['strata_origin_requests_total{origin="refusing",outcome="EDGE_ERR_ORIGIN_CONNECT"}'],
      1,
    );
    assert.equal(delta['strata_origin_retries_total{origin="refusing"}'], 1);
    assert.equal(delta['strata_origin_requests_total{origin="live",outcome="2xx"}'], 20);
  });

  it("falls back to a backup site's origins when its own origin refuses, a long URL included", async () => {
    const before = live.count();
    for (const path of [`${LONG}&backup=1`, '/b?backup=2']) {
      const res = await edge.get(path, { headers: { host: 'fallback.test' } });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'live');
    }
    assert.equal(live.count() - before, 2, "each request reached the backup site's origin once");
    const pool = edge.node.edge.sites.all.find((site) => site.name === 'primary-only')!.pool;
    assert.deepEqual(
      pool.backups.map((origin) => origin.name),
      ['live'],
    );
  });

  it('retries a GET answered 503 on another origin, discarding the 503', async () => {
    const target = `/b?${'q'.repeat(100)}`;
    const res = await edge.get(target, { headers: { host: 'overloaded.test' } });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'live');
    assert.equal(unavailable.count(target), 1, 'tried first: not yet measured');
    assert.equal(live.count(target), 1);
  });

  it('never retries a POST once sent: the 503 reaches the client and the other origin sees nothing', async () => {
    const res = await edge.get('/post', {
      method: 'POST',
      body: 'order=1',
      headers: { host: 'overloaded.test' },
    });
    const resNoBody = await edge.get('/post', { method: 'POST', headers: { host: 'overloaded.test' } });
    // The first try goes to the cheapest origin; make the test about the 503 one only.
    const toUnavailable = unavailable.requests.filter((r) => r.path === '/post').length;
    const toLive = live.requests.filter((r) => r.path === '/post').length;
    assert.equal(toUnavailable + toLive, 2, 'each POST reached exactly one origin');
    for (const r of [res, resNoBody]) assert.ok(r.status === 503 || r.status === 200);
    assert.equal(
      [res, resNoBody].filter((r) => r.status === 503).length,
      toUnavailable,
      'every POST the 503 origin saw was answered 503, not retried',
    );
  });

  it('ejects an origin that answers 503 with Retry-After at once', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    const first = await edge.get('/retry-after?1', { headers: { host: 'after.test' } });
    assert.equal(first.text, 'live');
    const seen = unavailable.count('/retry-after');
    for (let i = 2; i < 10; i++) {
      const res = await edge.get(`/retry-after?${i}`, { headers: { host: 'after.test' } });
      assert.equal(res.text, 'live');
    }
    assert.equal(unavailable.count('/retry-after'), seen, 'ejected: no further request');
    const delta = await counters.delta();
    assert.equal(delta['strata_origin_ejections_total{origin="unavailable-too"}'], 1);
  });

  it('keeps round robin turning when the retry budget refuses a retry', async () => {
    // No retry budget: a request whose first origin refuses gets the 502. The refused retry
    // used to take the next origin anyway, so every request started at the refusing one.
    const before = live.count();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const path = `/a?rotating=${i}&${'q'.repeat(100)}`;
      statuses.push((await edge.get(path, { headers: { host: 'rotating.test' } })).status);
    }
    assert.equal(statuses.filter((status) => status === 200).length, 5, statuses.join(' '));
    assert.equal(statuses.filter((status) => status === 502).length, 5, statuses.join(' '));
    assert.equal(live.count() - before, 5);
  });

  it('bounds retries by the budget when every origin answers 503', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    const before = unavailable.count();
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      statuses.push((await edge.get(`/a?down=${i}`, { headers: { host: 'down.test' } })).status);
    }
    assert.deepEqual(new Set(statuses), new Set([503]));
    const reached = unavailable.count() - before;
    assert.ok(reached >= 50 && reached <= 60, `${reached} origin requests for 50 client requests`);
    const delta = await counters.delta();
    assert.ok((delta['strata_origin_retry_budget_exhausted_total{site="down"}'] ?? 0) >= 40);
  });
});

describe('client-region preference', () => {
  let us: TestOrigin;
  let eu: TestOrigin;
  let edge: TestNode;

  before(async () => {
    // us answers 100 times slower than eu: a region farther away is still the client's region.
    us = await scripted(delayed('us', 100));
    eu = await scripted(delayed('eu', 1));
    edge = await startNode({
      origin: us.url,
      config: {
        origins: [
          { name: 'eu-1', url: eu.url, region: 'eu' },
          { name: 'us-1', url: us.url, region: 'us' },
        ],
        sites: [{ name: 'geo', hosts: ['*'], origins: ['eu-1', 'us-1'], prefer: 'client-region' }],
        geo: {
          networks: [
            { cidr: '127.0.0.2/32', region: 'us' },
            { cidr: '127.0.0.3/32', region: 'eu' },
          ],
        },
        proxy: { trustedProxies: ['127.0.0.4'] },
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([us.close(), eu.close()]);
  });

  it('sends a client mapped to us to the us origin, though the eu one answers 100 times faster', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await edge.get(`${LONG}&us=${i}`, { localAddress: '127.0.0.2' });
      assert.equal(res.text, 'us');
    }
    assert.equal(us.count(), 5);
  });

  it('sends a client mapped to eu to the eu origin', async () => {
    const before = us.count();
    for (let i = 0; i < 5; i++) {
      const res = await edge.get(`/a?eu=${i}`, { localAddress: '127.0.0.3' });
      assert.equal(res.text, 'eu');
    }
    assert.equal(us.count(), before);
  });

  it('reads the client from X-Forwarded-For when the peer is a trusted proxy, and not otherwise', async () => {
    const trusted = await edge.get('/a?via=trusted', {
      localAddress: '127.0.0.4',
      headers: { 'x-forwarded-for': '127.0.0.2' },
    });
    assert.equal(trusted.text, 'us');
    const forwardedOnly = await edge.get('/a?via=trusted-forwarded', {
      localAddress: '127.0.0.4',
      headers: { forwarded: 'for=127.0.0.2;proto=https' },
    });
    assert.equal(forwardedOnly.text, 'us', 'a trusted proxy that sends only Forwarded');
    const untrusted = await edge.get('/a?via=untrusted', {
      localAddress: '127.0.0.3',
      headers: { 'x-forwarded-for': '127.0.0.2' },
    });
    assert.equal(untrusted.text, 'eu', 'a claim from an untrusted peer is ignored');
  });
});

describe('what a failover leaves in the log and the error response', () => {
  let live: TestOrigin;
  let edge: TestNode;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    live = await scripted(delayed('live', 1));
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: live.url,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info', access: true },
        origins: [
          { name: 'dead-1', url: dead },
          { name: 'live', url: live.url },
          { name: 'dead-2', url: dead },
          { name: 'dead-3', url: dead },
        ],
        sites: [
          { name: 'failover', hosts: ['failover.test'], origins: ['dead-1', 'live'] },
          { name: 'down', hosts: ['down.test'], origins: ['dead-2', 'dead-3'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await live.close();
  });

  const completed = () => lines.filter((line) => line.msg === 'request completed');

  it('names the origin that answered and the number of origins tried in the access log', async () => {
    const res = await edge.get(`${LONG}&log=1`, { headers: { host: 'failover.test' } });
    assert.equal(res.text, 'live');
    await new Promise((resolve) => setImmediate(resolve));
    const line = completed().at(-1)!;
    assert.equal(line.origin, 'live');
    assert.equal(line.attempts, 2);
  });

  it('names the last origin that failed in Proxy-Status, and both attempts in the log', async () => {
    const res = await edge.get('/a?log=2', { headers: { host: 'down.test' } });
    assert.equal(res.status, 502);
    assert.match(String(res.headers['proxy-status']), /error=connection_refused; details="dead-3"/);
    assert.doesNotMatch(res.text, /127\.0\.0\.1/);
    await new Promise((resolve) => setImmediate(resolve));
    const line = completed().at(-1)!;
    assert.equal(line.origin, 'dead-3');
    assert.equal(line.attempts, 2);
  });
});

describe("client-region from a MaxMind database, and the next region when the client's is ejected", () => {
  let us: TestOrigin;
  let eu: TestOrigin;
  let asia: TestOrigin;
  let edge: TestNode;
  let usDown = false;
  const dir = mkdtempSync(join(tmpdir(), 'strata-geo-'));

  before(async () => {
    us = await scripted((req, res) => {
      if (usDown) {
        res.writeHead(503, { 'retry-after': '60' });
        return void res.end('down');
      }
      delayed('us', 1)(req, res, 0);
    });
    eu = await scripted(delayed('eu', 10));
    asia = await scripted(delayed('asia', 60));
    const database = join(dir, 'country.mmdb');
    writeMmdb(database, [
      { cidr: '127.0.0.2/32', country: 'US', continent: 'NA' },
      { cidr: '127.0.0.3/32', country: 'DE', continent: 'EU' },
      { cidr: '127.0.0.4/32', country: 'JP', continent: 'AS' },
    ]);
    edge = await startNode({
      origin: us.url,
      config: {
        origins: [
          { name: 'asia-1', url: asia.url, region: 'as' },
          { name: 'eu-1', url: eu.url, region: 'eu' },
          { name: 'us-1', url: us.url, region: 'us' },
        ],
        sites: [{ name: 'geo', hosts: ['*'], origins: ['asia-1', 'eu-1', 'us-1'], prefer: 'client-region' }],
        geo: { database },
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([us.close(), eu.close(), asia.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends each client to the origin of its country, or of its continent', async () => {
    assert.equal((await edge.get(`${LONG}&c=us`, { localAddress: '127.0.0.2' })).text, 'us');
    assert.equal((await edge.get('/a?c=de', { localAddress: '127.0.0.3' })).text, 'eu', 'DE: continent EU');
    assert.equal((await edge.get('/a?c=jp', { localAddress: '127.0.0.4' })).text, 'asia', 'JP: continent AS');
  });

  it('with the client region ejected, goes to the next region by measured latency, never a farther one', async () => {
    usDown = true;
    const answers = [];
    for (let i = 0; i < 6; i++)
      answers.push((await edge.get(`/b?us-down=${i}`, { localAddress: '127.0.0.2' })).text);
    assert.deepEqual(new Set(answers), new Set(['eu']), 'eu (10 ms) before asia (60 ms)');
    assert.equal(us.count('/b?us-down=0'), 1, 'the 503 with Retry-After ejected us at once');
    assert.equal(asia.requests.filter((r) => r.path.startsWith('/b?us-down')).length, 0);
  });
});

describe('a connection reset before any response byte', () => {
  let resetting: TestOrigin;
  let live: TestOrigin;
  let edge: TestNode;

  before(async () => {
    const reset: Route = (req) => {
      req.socket.destroy();
    };
    resetting = await scripted(reset);
    resetting.route('/post', reset);
    live = await scripted(delayed('live', 1));
    live.route('/post', delayed('live', 1));
    edge = await startNode({
      origin: live.url,
      config: {
        origins: [
          { name: 'reset-get', url: resetting.url },
          { name: 'reset-post', url: resetting.url },
          { name: 'live', url: live.url },
        ],
        sites: [
          { name: 'get', hosts: ['get.test'], origins: ['reset-get', 'live'] },
          { name: 'post', hosts: ['post.test'], origins: ['reset-post', 'live'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([resetting.close(), live.close()]);
  });

  it('retries a GET on another origin', async () => {
    const res = await edge.get(`${LONG}&reset=get`, { headers: { host: 'get.test' } });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'live');
    assert.equal(resetting.count(`${LONG}&reset=get`), 1);
  });

  it('does not retry a POST, which may have been processed: the client gets 502', async () => {
    const res = await edge.get('/post', { method: 'POST', headers: { host: 'post.test' } });
    assert.equal(res.status, 502);
    assert.match(String(res.headers['proxy-status']), /details="reset-post"/);
    assert.equal(resetting.count('/post'), 1);
    assert.equal(live.count('/post'), 0);
  });
});

describe('origin state over a reload', () => {
  let down: TestOrigin;
  let live: TestOrigin;
  let edge: TestNode;
  const config = (origins: Array<{ name: string; url: string }>) => ({
    listeners: [{ listen: '127.0.0.1:0' }],
    origins,
    sites: [{ name: 'reloaded', hosts: ['*'], origins: origins.map((o) => o.name) }],
    admin: { enabled: false },
    logging: { level: 'silent' as const },
  });

  before(async () => {
    down = await scripted(delayed('down', 0, 503, { 'retry-after': '120' }));
    live = await scripted(delayed('live', 1));
    edge = await startNode({
      origin: live.url,
      config: config([
        { name: 'down', url: down.url },
        { name: 'live', url: live.url },
      ]),
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([down.close(), live.close()]);
  });

  const view = () => edge.node.edge.sites.all[0]!.pool.describe();

  it('keeps an ejection across a reload that keeps the origin, and forgets an origin removed', async () => {
    assert.equal((await edge.get('/a?before-reload')).text, 'live');
    assert.equal(view().origins[0]!.state, 'ejected');
    const next = validateConfig({
      ...config([
        { name: 'down', url: down.url },
        { name: 'live', url: live.url },
      ]),
      cache: edge.node.config.cache,
    });
    assert.ok('config' in next);
    edge.node.reloadSites(next.config);
    assert.equal(view().origins[0]!.state, 'ejected', 'same name and URL: same state');
    assert.equal((await edge.get('/a?after-reload')).text, 'live');
    assert.equal(down.count(), 1);
    const moved = validateConfig({
      ...config([
        { name: 'down', url: `${live.url}` },
        { name: 'live', url: live.url },
      ]),
      cache: edge.node.config.cache,
    });
    assert.ok('config' in moved);
    edge.node.reloadSites(moved.config);
    assert.equal(view().origins[0]!.state, 'healthy', 'a new URL is a new origin');
  });
});

describe('a request with a body is never sent twice', () => {
  let live: TestOrigin;
  let unavailable: TestOrigin;
  let edge: TestNode;
  const path = `${LONG}&fat=1`;

  before(async () => {
    live = await scripted(delayed('live', 1));
    unavailable = await scripted(delayed('unavailable', 0, 503));
    edge = await startNode({
      origin: live.url,
      config: {
        origins: [
          { name: 'unavailable', url: unavailable.url },
          { name: 'live', url: live.url },
        ],
        sites: [{ name: 'search', hosts: ['*'], origins: ['unavailable', 'live'] }],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([live.close(), unavailable.close()]);
  });

  it('relays the 503 to a GET with a body (its body is spent), and blames no other origin', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    const body = '{"query":"spring"}';
    const res = await edge.get(path, {
      body,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    });
    assert.equal(res.status, 503);
    assert.equal(res.text, 'unavailable');
    assert.equal(unavailable.count(path), 1, 'tried first: not yet measured');
    assert.equal(unavailable.requests.at(-1)!.body.toString(), body);
    assert.equal(live.count(), 0, 'the other origin sees nothing');
    const delta = await counters.delta();
    assert.equal(delta['strata_origin_retries_total{origin="unavailable"}'] ?? 0, 0);
    for (const [name, value] of Object.entries(delta))
      if (name.startsWith('strata_origin_requests_total{origin="live"')) assert.equal(value, 0, name);
  });
});

describe('an origin that cuts every body short', () => {
  let cutting: TestOrigin;
  let whole: TestOrigin;
  let edge: TestNode;

  before(async () => {
    // Headers at once, then a reset after part of the body: fast to answer, never whole.
    cutting = await scripted((req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'cache-control': 'max-age=60' });
      res.write('x'.repeat(100));
      setTimeout(() => req.socket.destroy(), 20);
    });
    whole = await scripted(delayed('whole', 1, 200, { 'cache-control': 'max-age=60' }));
    edge = await startNode({
      origin: whole.url,
      config: {
        origins: [
          { name: 'cutting', url: cutting.url },
          { name: 'whole', url: whole.url },
        ],
        sites: [
          {
            name: 'rotating',
            hosts: ['rotating.test'],
            origins: ['cutting', 'whole'],
            selection: 'round-robin',
            outlier: { consecutiveFailures: 3, baseEjection: 60_000 },
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([cutting.close(), whole.close()]);
  });

  const view = () =>
    edge.node.edge.sites.all.find((site) => site.name === 'rotating')!.pool.describe().origins[0]!;

  it('is ejected after consecutiveFailures bodies cut short, as for failures before the headers', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    const cut = () => cutting.requests.filter((r) => r.path.startsWith('/a?cut=')).length;
    for (let i = 0; i < 12 && cut() < 3; i++) {
      const res = await edge
        .get(`/a?cut=${i}`, { headers: { host: 'rotating.test' } })
        .catch((error) => error);
      if (res instanceof Error) continue; // the client sees the body cut short too
    }
    assert.equal(cut(), 3, 'three bodies cut short');
    const until = Date.now() + 2000;
    while (view().state !== 'ejected' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(view().state, 'ejected');
    for (let i = 0; i < 6; i++) {
      const res = await edge.get(`/a?after=${i}`, { headers: { host: 'rotating.test' } });
      assert.equal(res.text, 'whole');
    }
    assert.equal(cutting.requests.filter((r) => r.path.startsWith('/a?after=')).length, 0);
    const delta = await counters.delta();
    assert.equal(delta['strata_origin_ejections_total{origin="cutting"}'], 1);
  });
});
