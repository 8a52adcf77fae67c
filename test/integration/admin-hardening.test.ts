import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const LONG = `/account/${'s'.repeat(80)}/settings?tab=${'t'.repeat(30)}`;

describe('admin token hardening', () => {
  let origin: TestOrigin;
  let edge: AdminNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/purge': (req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(`origin got ${req.headers.authorization ?? 'nothing'}`);
      },
    });
    edge = await startAdminNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers 429 with Retry-After after 20 failed tokens from one address in a minute, even for the right token', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await edge.call('GET', '/stats', undefined, `wrong-token-${i}-wrong-token`);
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    const throttled = await edge.call('GET', '/stats', undefined, 'wrong-token-21-wrong-token');
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers['retry-after'], '60');
    const right = await edge.call('POST', '/purge', { all: true });
    assert.equal(right.status, 429, 'no guess is checked while throttled');
    assert.equal(edge.node.purge.log.sequence, 0);

    // Another address is not throttled.
    const agent = new Agent({ localAddress: '127.0.0.2' } as ConstructorParameters<typeof Agent>[0]);
    try {
      const other = await request(`${edge.admin}/stats`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        agent,
      });
      assert.equal(other.status, 200);
    } finally {
      agent.destroy();
    }
    // Health checks are never throttled.
    assert.equal((await edge.call('GET', '/healthz', undefined, null)).status, 200);

    clock.advance(30);
    const later = await edge.call('GET', '/stats');
    assert.equal(later.status, 429);
    assert.equal(later.headers['retry-after'], '30');
    clock.advance(31);
    assert.equal((await edge.call('GET', '/stats')).status, 200);
  });

  it('never forwards a client-port request carrying the admin token to the origin', async () => {
    for (const path of ['/purge', LONG]) {
      for (const method of ['POST', 'GET']) {
        const before = origin.count();
        const res = await edge.get(path, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: '{"all":true}' } : {}),
        });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.doesNotMatch(res.text, new RegExp(TOKEN));
        assert.equal(origin.count(), before, `${method} ${path} reached the origin`);
      }
    }
    assert.equal(edge.node.purge.log.sequence, 0, 'the client port never purges');
    const other = await edge.get('/purge', {
      method: 'POST',
      headers: { authorization: 'Bearer some-site-token' },
      body: 'x',
    });
    assert.equal(other.text, 'origin got Bearer some-site-token', "a site's own credentials pass");
  });
});

describe('admin API routes and bounds', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({});
    edge = await startAdminNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers a known route asked with another method 405 with Allow (RFC 9110 §15.5.6)', async () => {
    for (const [method, path, allow] of [
      ['GET', '/purge', 'POST'],
      ['DELETE', '/purge', 'POST'],
      ['POST', '/stats', 'GET, HEAD'],
      ['DELETE', '/metrics', 'GET, HEAD'],
      ['PUT', '/cache', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const res = await edge.call(method, path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.allow, allow, `${method} ${path}`);
    }
    assert.equal((await edge.call('GET', '/nothing-here')).status, 404);
  });

  it('answers HEAD as GET without a body: a load balancer checking with HEAD is neither refused nor throttled', async () => {
    // More tokenless HEAD checks than the failed-token limit (20): none counts as a failure.
    for (let i = 0; i < 25; i++) {
      for (const path of ['/healthz', '/readyz']) {
        const res = await edge.call('HEAD', path, undefined, null);
        assert.equal(res.status, 200, `HEAD ${path} #${i}`);
        assert.equal(res.text, '');
        assert.equal(res.headers['content-type'], 'application/json');
      }
    }
    const stats = await edge.call('HEAD', '/stats');
    assert.equal(stats.status, 200);
    assert.equal(stats.text, '');
    assert.equal((await edge.call('HEAD', '/stats', undefined, null)).status, 401);
    // The address was never throttled by the checks: a right token still answers.
    assert.equal((await edge.call('GET', '/stats')).status, 200);
  });

  it('refuses a listing prefix a purge would refuse, and a limit out of range, instead of listing everything', async () => {
    for (const query of ['prefix=bad', 'prefix=/assets/', 'limit=0', 'limit=10001', 'limit=-1']) {
      const res = await edge.call('GET', `/cache?${query}`);
      assert.equal(res.status, 400, query);
    }
    assert.equal(
      (await edge.call('GET', `/cache?prefix=${encodeURIComponent(`${edge.base}/assets/`)}&limit=10000`))
        .status,
      200,
    );
  });

  it('answers a request target that is no URL 400, without a token too, never 500', async () => {
    const port = Number(new URL(edge.admin).port);
    for (const target of ['http://[/stats', 'http://x:99999/metrics', 'http://a%zz/stats']) {
      for (const auth of ['', `Authorization: Bearer ${TOKEN}\r\n`]) {
        const { text } = await rawExchange(
          port,
          `GET ${target} HTTP/1.1\r\nHost: admin\r\n${auth}Connection: close\r\n\r\n`,
        );
        assert.match(text, /^HTTP\/1\.1 400 /, `${target} ${auth === '' ? 'without' : 'with'} a token`);
        assert.match(text, /"error":"bad request target/, target);
      }
    }
  });

  it('refuses a listing tag or cursor no entry can have with 400, and lists nothing under a prefix no key can start with', async () => {
    const long = 'a'.repeat(5000);
    for (const query of [`tag=${long}`, `tag=${'t'.repeat(257)}`, `tag=x&after=${long}`, `after=${long}`]) {
      const res = await edge.call('GET', `/cache?${query}`);
      assert.equal(res.status, 400, `${query.slice(0, 20)}: ${res.text.slice(0, 200)}`);
      assert.match(JSON.parse(res.text).error, /tag is longer|after/);
    }
    const res = await edge.call('GET', `/cache?prefix=${encodeURIComponent(`${edge.base}/${long}`)}`);
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.deepEqual(JSON.parse(res.text).entries, []);
  });

  it('refuses a purge body declared over 1 MiB at once, without waiting for it', async () => {
    const started = Date.now();
    const res = await request(`${edge.admin}/purge`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        'content-length': '5000000',
      },
      body: '{}',
      timeoutMs: 3000,
    }).catch((error: unknown) => ({ status: 0, error }));
    assert.equal(res.status, 413, `answered in ${Date.now() - started} ms`);
  });
});
