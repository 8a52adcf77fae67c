/**
 * Request collapsing in one process: concurrent misses make one origin request and read
 * the leader's body as it arrives; the lock's other states (failed, uncacheable, another
 * variant, Authorization) release followers the way the lock model says.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const body = Buffer.alloc(300 * 1024);
/** A real-length URL (over 100 characters) whose answer varies on Accept-Language. */
const LONG_VARY = `/catalogue/products/2026/winter/${'outdoor-equipment-'.repeat(4)}jackets/waterproof-shell-with-hood`;
for (let i = 0; i < body.length; i++) body[i] = i % 251;
/** A real-length URL (over 100 characters) whose followers must be sent the response's Age. */
const AGED = `/catalogue/products/2026/spring/${'garden-furniture-'.repeat(4)}teak-bench-with-cushions`;

/** Sends the body in two halves 200 ms apart, so followers join a fill still streaming. */
async function slowBody(res: ServerResponse, headers: Record<string, string | number>): Promise<void> {
  res.writeHead(200, { 'content-length': body.length, ...headers });
  res.write(body.subarray(0, body.length / 2));
  await sleep(200);
  res.end(body.subarray(body.length / 2));
}

describe('collapsing concurrent requests in one process', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let hold: Promise<void> = Promise.resolve();
  let releaseHold = () => {};

  before(async () => {
    origin = await startOrigin({
      '/herd': async (_req, res) => {
        await sleep(100);
        await slowBody(res, { 'cache-control': 'max-age=600' });
      },
      '/flaky': async (_req, res, hit) => {
        await sleep(100);
        if (hit === 1) return void res.destroy();
        res.writeHead(200, { 'cache-control': 'max-age=600' });
        res.end('second try');
      },
      '/private': async (_req, res, hit) => {
        await sleep(100);
        res.writeHead(200, { 'cache-control': 'private, max-age=600' });
        res.end(`private ${hit}`);
      },
      '/leader-leaves': async (_req, res) => slowBody(res, { 'cache-control': 'max-age=600' }),
      '/held': async (_req, res) => {
        await hold;
        res.writeHead(200, { 'cache-control': 'max-age=600' });
        res.end('held');
      },
      [LONG_VARY]: async (req, res) => {
        await sleep(100);
        const text = `long ${req.headers['accept-language']}`;
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          vary: 'Accept-Language',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
      '/vary': async (req, res) => {
        await sleep(100);
        res.writeHead(200, { 'cache-control': 'max-age=600', vary: 'Accept-Language' });
        res.end(`lang ${req.headers['accept-language']}`);
      },
      '/auth': async (_req, res) => {
        await sleep(100);
        res.writeHead(200, { 'cache-control': 'public, max-age=600' });
        res.end('auth');
      },
    });
    edge = await startNode({
      origin: origin.url,
      // the disconnect test holds the origin's answer longer than the helper's 5 s default
      config: {
        origins: [{ name: 'origin', url: origin.url, connectTimeout: 2000, responseTimeout: 60_000 }],
      },
    });
  });
  after(async () => {
    releaseHold();
    await edge.close();
    await origin.close();
  });

  it('collapses 200 concurrent misses into one origin request with identical bodies', async () => {
    const counters = await metricsDelta(edge.node.metrics.registry);
    const responses = await Promise.all(Array.from({ length: 200 }, () => request(`${edge.url}/herd`)));
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.complete);
      assert.ok(response.body.equals(body));
    }
    assert.equal(origin.count('/herd'), 1);
    const statuses = responses.map((r) => String(r.headers['cache-status']));
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; fwd-status=200; stored').length, 1);
    // the rest joined the fill (collapsed) or, arriving after its commit on a busy machine, hit
    for (const status of statuses)
      assert.match(status, /stored$|^strata; fwd=miss; collapsed$|^strata; hit; ttl=/);
    assert.ok(statuses.some((s) => s.endsWith('collapsed')));
    await edge.node.idle();
    // What an operator watches: one stored miss, every other request collapsed or a hit.
    const delta = await counters.delta();
    const collapsed = statuses.filter((s) => s.endsWith('collapsed')).length;
    assert.equal(delta['strata_cache_lookups_total{result="miss"}'], 1);
    assert.equal(delta['strata_cache_inserts_total{outcome="stored"}'], 1);
    assert.equal(delta.strata_collapsed_waiters_total, collapsed);
    assert.equal(
      (delta['strata_cache_lookups_total{result="collapsed"}'] ?? 0) +
        (delta['strata_cache_lookups_total{result="hit"}'] ?? 0),
      199,
    );
    assert.equal(delta['strata_origin_requests_total{origin="origin",outcome="2xx"}'], 1);
    assert.match(String((await edge.get('/herd')).headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(edge.node.edge.collapse.size, 0);
  });

  it('makes one extra origin request when the leader’s origin request fails', async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, () => request(`${edge.url}/flaky`)));
    assert.equal(origin.count('/flaky'), 2);
    const ok = responses.filter((r) => r.text === 'second try');
    assert.equal(ok.length, 49, 'everyone but the failed leader got the new leader’s response');
  });

  it('releases followers of an uncacheable response to fetch on their own, then passes (hit-for-pass)', async () => {
    const responses = await Promise.all(Array.from({ length: 20 }, () => request(`${edge.url}/private`)));
    assert.equal(origin.count('/private'), 20);
    assert.equal(new Set(responses.map((r) => r.text)).size, 20, 'no follower got the leader’s body');
    assert.ok(edge.node.edge.collapse.isHitForPass(`${edge.url}/private`));
    const again = await Promise.all(Array.from({ length: 20 }, () => request(`${edge.url}/private`)));
    assert.equal(new Set(again.map((r) => r.text)).size, 20);
    assert.equal(origin.count('/private'), 40);
    assert.equal(edge.node.edge.collapse.size, 0, 'the next wave did not queue');
  });

  it('finishes the fill for followers when the leader’s client disconnects', async () => {
    const leader = httpRequest(`${edge.url}/leader-leaves`, { agent: false });
    leader.on('error', () => {});
    leader.on('response', (res) => res.once('data', () => leader.destroy()));
    leader.end();
    await until(() => origin.count('/leader-leaves') === 1, 2000);
    const follower = await request(`${edge.url}/leader-leaves`);
    assert.ok(follower.complete);
    assert.ok(follower.body.equals(body));
    await edge.node.idle();
    const hit = await edge.get('/leader-leaves');
    assert.match(String(hit.headers['cache-status']), /^strata; hit; ttl=/);
    assert.ok(hit.body.equals(body));
    assert.equal(origin.count('/leader-leaves'), 1);
  });

  it('leaves no waiter behind after 10,000 follower disconnects', async () => {
    hold = new Promise((resolve) => {
      releaseHold = resolve;
    });
    const leader = request(`${edge.url}/held`);
    await until(() => origin.count('/held') === 1, 2000);
    const collapse = edge.node.edge.collapse;
    for (let batch = 0; batch < 20; batch++) {
      let refused = 0;
      const requests = Array.from({ length: 500 }, () => {
        const req = httpRequest(`${edge.url}/held`, { agent: false });
        req.on('error', () => refused++);
        req.end();
        return req;
      });
      const arrived = await until(() => collapse.waiters + refused >= 500, 10_000);
      assert.ok(arrived && refused < 50, `batch ${batch}: ${collapse.waiters} waiting, ${refused} refused`);
      for (const req of requests) req.destroy();
      assert.ok(
        await until(() => collapse.waiters === 0, 10_000),
        `batch ${batch}: ${collapse.waiters} left`,
      );
    }
    releaseHold();
    assert.equal((await leader).text, 'held');
    await edge.node.idle();
    assert.equal(collapse.waiters, 0);
    assert.equal(collapse.size, 0);
    assert.equal(origin.count('/held'), 1);
  });

  it('does not serve a follower the leader’s variant when its Vary fields differ', async () => {
    const [en, fr] = await Promise.all([
      request(`${edge.url}/vary`, { headers: { 'accept-language': 'en' } }),
      sleep(20).then(() => request(`${edge.url}/vary`, { headers: { 'accept-language': 'fr' } })),
    ]);
    assert.equal(en.text, 'lang en');
    assert.equal(fr.text, 'lang fr');
    assert.equal(origin.count('/vary'), 2);
  });

  it('stores every variant asked while a small body of another variant of the URL is being filled (3 variants, long URL)', async () => {
    const languages = ['en', 'fr', 'de'];
    const first = await Promise.all(
      languages.map((lang, i) =>
        sleep(i * 20).then(() =>
          request(`${edge.url}${LONG_VARY}`, { headers: { 'accept-language': lang } }),
        ),
      ),
    );
    for (const [i, lang] of languages.entries()) assert.equal(first[i]!.text, `long ${lang}`);
    assert.equal(origin.count(LONG_VARY), 3);
    await edge.node.idle();
    // Each variant was stored by its own fill: asked again, all three are hits.
    for (const lang of languages) {
      const again = await request(`${edge.url}${LONG_VARY}`, { headers: { 'accept-language': lang } });
      assert.equal(again.text, `long ${lang}`);
      assert.match(String(again.headers['cache-status']), /strata; hit/, lang);
    }
    assert.equal(origin.count(LONG_VARY), 3);
  });

  // RFC 9111 §4.2.3, §5.1: a follower's response is as old as the leader's; sent without Age, a
  // downstream cache or child tier took it for new. A body over 64 KiB is read as it arrives.
  const aged = [
    { name: 'origin Age 30, answered whole', size: 2000, age: 30, dated: false },
    { name: 'origin Age 30, read as it arrives', size: 100 * 1024, age: 30, dated: false },
    { name: 'origin Date 20 s past, read as it arrives', size: 100 * 1024, age: 20, dated: true },
  ];
  for (const [index, { name, size, age, dated }] of aged.entries()) {
    it(`sends every collapsed follower the response's current Age (${name})`, async () => {
      const path = `${AGED}-${index}`;
      const payload = Buffer.alloc(size, 'teak');
      origin.route(path, async (_req, res) => {
        // The gate: the leader's answer comes only once the other four wait behind it.
        await until(() => edge.node.edge.collapse.waiters >= 4, 10_000);
        const headers = dated
          ? { date: new Date(Date.now() - age * 1000).toUTCString() }
          : { date: new Date().toUTCString(), age: String(age) };
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': size, ...headers });
        res.end(payload);
      });
      const started = Date.now();
      const responses = await Promise.all(Array.from({ length: 5 }, () => request(`${edge.url}${path}`)));
      const elapsed = Math.ceil((Date.now() - started) / 1000);
      assert.equal(origin.count(path), 1);
      const followers = responses.filter((r) => r.headers['cache-status'] === 'strata; fwd=miss; collapsed');
      assert.equal(followers.length, 4);
      for (const follower of followers) {
        assert.ok(follower.body.equals(payload));
        const sent = Number(follower.headers.age);
        // A Date read to the second may make the response up to 1 s older.
        const most = age + elapsed + (dated ? 1 : 0);
        assert.ok(sent >= age && sent <= most, `Age ${follower.headers.age}, expected ${age}..${most}`);
      }
      await edge.node.idle();
    });
  }

  it('never collapses requests carrying Authorization', async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(`${edge.url}/auth`, { headers: { authorization: `Bearer user-${i}` } }),
      ),
    );
    for (const response of responses) assert.equal(response.text, 'auth');
    assert.equal(origin.count('/auth'), 10);
  });
});
