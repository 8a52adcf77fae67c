import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { eventually } from './purge-support.ts';

/** Fields origins commonly honour to build links or route requests, none of them in the cache key. */
const SPOOFABLE = [
  'x-forwarded-scheme',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-ssl',
  'x-host',
  'x-original-host',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-real-ip',
  'true-client-ip',
];
/** Standard fields the node overwrites for an untrusted peer. */
const OVERWRITTEN = ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for', 'forwarded'];

const LONG = `/assets/${'a'.repeat(60)}/${'b'.repeat(40)}/page.html?utm_source=${'c'.repeat(30)}`;

/** An origin that builds an absolute link from whatever forwarding fields it receives. */
function linkPage(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const h = req.headers;
  const scheme = h['x-forwarded-scheme'] ?? h['x-forwarded-proto'] ?? 'http';
  const host = h['x-host'] ?? h['x-original-host'] ?? h['x-forwarded-host'] ?? h.host;
  const port = h['x-forwarded-port'] ? `:${h['x-forwarded-port']}` : '';
  const prefix = h['x-forwarded-prefix'] ?? '';
  const path = h['x-original-url'] ?? h['x-rewrite-url'] ?? h['x-forwarded-uri'] ?? req.url;
  const method = h['x-http-method-override'] ?? h['x-http-method'] ?? h['x-method-override'] ?? req.method;
  const seen = [...SPOOFABLE, ...OVERWRITTEN].map((name) => `${name}=${h[name] ?? ''}`).join('\n');
  res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
  res.end(`${method} ${scheme}://${host}${port}${prefix}${path}\n${seen}\n`);
}

describe('forwarding headers from untrusted clients', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin();
    edge = await startNode({ origin: origin.url, config: { proxy: { trustedProxies: ['10.9.9.9'] } } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const name of [...SPOOFABLE, ...OVERWRITTEN]) {
    for (const [kind, base] of [
      ['short', '/p'],
      ['real-length', LONG.replace('?', `/${name}?`)],
    ] as const) {
      const path = kind === 'short' ? `${base}/${name}` : base;
      it(`does not let ${name} from one client poison what another gets from cache (${kind} URL)`, async () => {
        origin.route(path.split('?')[0]!, linkPage);
        const poisoner = await edge.get(path, { headers: { [name]: 'evil.example' } });
        assert.equal(poisoner.status, 200);
        assert.doesNotMatch(poisoner.text, /evil/, 'the origin never saw the spoofed value');
        const seen = origin.requests.at(-1)!.headers[name];
        assert.notEqual(seen, 'evil.example', `origin received ${name}: ${String(seen)}`);
        const victim = await edge.get(path);
        assert.equal(victim.status, 200);
        assert.match(String(victim.headers['cache-status']), /^strata; hit/);
        assert.doesNotMatch(victim.text, /evil/);
        assert.equal(origin.count(path), 1);
      });
    }
  }

  it('strips method overrides from unsafe requests of untrusted clients too', async () => {
    origin.route('/api/items', (req, res) => {
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end(`${req.method} override=${req.headers['x-http-method-override'] ?? ''}`);
    });
    const res = await edge.get('/api/items', {
      method: 'POST',
      body: 'x',
      headers: { 'x-http-method-override': 'DELETE' },
    });
    assert.equal(res.text, 'POST override=');
  });
});

describe('forwarding headers from trusted proxies', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ '/echo': linkPage });
    edge = await startNode({ origin: origin.url, config: { proxy: { trustedProxies: ['127.0.0.1'] } } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('keeps and extends X-Forwarded-For/-Proto/-Host and passes the forwarding family on', async () => {
    await edge.get('/echo', {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'www.example.com',
        'x-forwarded-port': '443',
        'x-forwarded-prefix': '/shop',
      },
    });
    const seen = origin.requests.at(-1)!.headers;
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'https');
    assert.equal(seen['x-forwarded-host'], 'www.example.com');
    assert.equal(seen['x-forwarded-port'], '443');
    assert.equal(seen['x-forwarded-prefix'], '/shop');
  });

  it('drops URL rewrites and method overrides on a request whose answer may be stored', async () => {
    await edge.get('/echo?fill', {
      headers: { 'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-http-method-override': 'DELETE' },
    });
    const seen = origin.requests.at(-1)!.headers;
    assert.equal(seen['x-original-url'], undefined);
    assert.equal(seen['x-rewrite-url'], undefined);
    assert.equal(seen['x-http-method-override'], undefined);
  });

  it('passes a method override on an unsafe request of a trusted proxy', async () => {
    origin.route('/api/items', (req, res) => {
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end(`${req.method} override=${req.headers['x-http-method-override'] ?? ''}`);
    });
    const res = await edge.get('/api/items', {
      method: 'POST',
      body: 'x',
      headers: { 'x-http-method-override': 'PATCH' },
    });
    assert.equal(res.text, 'POST override=PATCH');
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function originRequestsIn(metrics: string): number {
  let total = 0;
  for (const match of metrics.matchAll(/^strata_origin_requests_total\{[^}]*\} (\d+)$/gm))
    total += Number(match[1]);
  return total;
}

describe('loop detection (RFC 8586 CDN-Loop)', () => {
  it('sends CDN-Loop with its name and node id to origins, after the entries it received', async () => {
    const origin = await startOrigin({
      '/loop': (req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(String(req.headers['cdn-loop']));
      },
    });
    const edge = await startNode({ origin: origin.url });
    try {
      const first = (await edge.get('/loop')).text;
      assert.match(first, /^strata; node=[\w-]{12}$/);
      assert.equal(
        (await edge.get('/loop', { headers: { 'cdn-loop': 'other-cdn; v=1' } })).text,
        `other-cdn; v=1, ${first}`,
      );
      assert.equal(origin.count('/loop'), 2);
    } finally {
      await edge.close();
      await origin.close();
    }
  });

  it('serves and collapses requests from another node of the same name (a tier, not a loop)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const origin = await startOrigin({
      '/tiered': async (_req, res) => {
        await gate;
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end('from the origin');
      },
    });
    const edge = await startNode({ origin: origin.url });
    try {
      const child = { 'cdn-loop': 'strata; node=child-tier-1', via: '1.1 strata' };
      const path = `/tiered?${'k'.repeat(110)}`;
      const answers = [1, 2, 3].map(() => request(`${edge.url}${path}`, { headers: child }));
      assert.ok(await eventually(() => origin.count() === 1, 3000));
      assert.equal(edge.node.edge.collapse.waiters, 2, 'the other two wait for the first');
      release();
      for (const res of await Promise.all(answers)) {
        assert.equal(res.status, 200);
        assert.equal(res.text, 'from the origin');
      }
      await edge.node.idle();
      assert.equal(origin.count(), 1);
      assert.match(
        String(origin.requests[0]!.headers['cdn-loop']),
        /^strata; node=child-tier-1, strata; node=/,
      );
    } finally {
      await edge.close();
      await origin.close();
    }
  });

  it('answers 508 at once when its origin is itself, bounds the origin requests, and closes cleanly', async () => {
    const port = await freePort();
    const edge = await startNode({
      origin: `http://127.0.0.1:${port}`,
      config: {
        listeners: [{ listen: `127.0.0.1:${port}` }],
        origins: [
          { name: 'self', url: `http://127.0.0.1:${port}`, connectTimeout: 2000, responseTimeout: 30_000 },
        ],
        sites: [{ name: 'default', hosts: ['*'], origins: ['self'] }],
      },
    });
    try {
      for (const path of ['/x', LONG]) {
        const before = originRequestsIn(await edge.node.metrics.registry.metrics());
        const started = performance.now();
        const res = await request(`${edge.url}${path}`);
        assert.ok(performance.now() - started < 3000, 'answered without waiting for a timeout');
        assert.equal(res.status, 508);
        assert.match(String(res.headers['proxy-status']), /error=proxy_loop_detected/);
        // The pass refused here was never forwarded (RFC 9211 §2.2: no fwd); the first was.
        assert.equal(
          res.headers['cache-status'],
          'strata; detail=loop, strata; fwd=miss; fwd-status=508; detail=no-store',
        );
        await edge.node.idle();
        const sent = originRequestsIn(await edge.node.metrics.registry.metrics()) - before;
        assert.equal(sent, 1, 'its second pass is refused without asking an origin');
      }
      // Nodes of its name seen 3 times (ids dropped on the way, or a ring of tiers) is a loop too.
      const looped = await request(`${edge.url}/y`, { headers: { 'cdn-loop': 'strata, strata, strata' } });
      assert.equal(looped.status, 508);
      assert.equal(looped.headers['cache-status'], 'strata; detail=loop');
      const head = await request(`${edge.url}/y`, {
        method: 'HEAD',
        headers: { 'cdn-loop': 'strata, strata, strata' },
      });
      assert.equal(head.status, 508);
      assert.equal(head.headers['cache-status'], 'strata; detail=loop');
      const viaOnly = await request(`${edge.url}/y`, {
        headers: { via: '1.1 strata, 1.1 strata, 1.1 strata' },
      });
      assert.equal(viaOnly.status, 508);
    } finally {
      const started = performance.now();
      await edge.close();
      assert.ok(performance.now() - started < 3000, 'drain does not hang');
    }
  });
});
