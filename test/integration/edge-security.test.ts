import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { networksLookup } from '../../src/security/ip-rules.ts';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const LONG = `/catalog/${'x'.repeat(60)}/${'y'.repeat(40)}/item.html?variant=${'z'.repeat(30)}`;
const CACHED = { 'cache-control': 'max-age=600', 'content-type': 'text/plain' };

function site(security: Record<string, unknown>) {
  return { sites: [{ name: 'default', hosts: ['*'], origins: ['origin'], security }] };
}

describe('rate limit on all requests (GCRA per client address)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/page': respond(200, CACHED, 'page\n'),
      [LONG.split('?')[0]!]: respond(200, CACHED, 'long\n'),
    });
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: {
        ...site({ rateLimit: { requestsPerSecond: 2, burst: 3 }, allow: ['127.0.0.9'] }),
        proxy: { trustedProxies: ['127.0.0.8'] },
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers a client past its burst 429 with Retry-After and RateLimit fields, while another address is unaffected', async () => {
    const from = '127.0.0.2';
    for (let i = 0; i < 3; i++) {
      const ok = await edge.get(LONG, { localAddress: from });
      assert.equal(ok.status, 200, `request ${i + 1} within the burst`);
    }
    const refused = await edge.get(LONG, { localAddress: from });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers['ratelimit-policy'], '"requests";q=3;w=2');
    assert.match(String(refused.headers.ratelimit), /^"requests";r=0;t=1$/);
    assert.equal(refused.headers['cache-control'], 'no-store');
    assert.equal(refused.headers['cache-status'], 'strata; detail=rate-limited');
    assert.match(refused.text, /too many requests/);
    const other = await edge.get(LONG, { localAddress: '127.0.0.3' });
    assert.equal(other.status, 200);
    assert.match(String(other.headers['cache-status']), /hit/);
    assert.equal(origin.count(LONG), 1, 'one fill; the rest were hits or refused');
    const counted = await edge.node.metrics.registry.getSingleMetricAsString('strata_security_actions_total');
    assert.match(counted, /rule="rate-requests",action="refused"} 1/);
  });

  it('admits the client again once time has refilled its bucket', async () => {
    const from = '127.0.0.4';
    for (let i = 0; i < 3; i++) assert.equal((await edge.get('/page', { localAddress: from })).status, 200);
    assert.equal((await edge.get('/page', { localAddress: from })).status, 429);
    clock.advance(0.5); // one interval at 2/s
    assert.equal((await edge.get('/page', { localAddress: from })).status, 200);
    assert.equal((await edge.get('/page', { localAddress: from })).status, 429);
  });

  it('exempts allow-listed networks and trusted proxies', async () => {
    for (const from of ['127.0.0.9', '127.0.0.8']) {
      for (let i = 0; i < 8; i++) assert.equal((await edge.get('/page', { localAddress: from })).status, 200);
    }
  });

  it('limits each client behind a trusted proxy by the address the proxy forwarded', async () => {
    const via = (client: string) => ({
      localAddress: '127.0.0.8',
      headers: { 'x-forwarded-for': `10.1.1.1, ${client}` },
    });
    for (let i = 0; i < 3; i++) assert.equal((await edge.get(LONG, via('198.51.100.7'))).status, 200);
    const refused = await edge.get(LONG, via('198.51.100.7'));
    assert.equal(refused.status, 429, 'the fourth request of one client behind the balancer');
    assert.equal((await edge.get(LONG, via('198.51.100.8'))).status, 200, 'another client behind it');
    assert.equal((await edge.get(LONG, via('127.0.0.9'))).status, 200, 'an allow-listed client behind it');
    // Its own requests (health checks) and a hop that is no address: the proxy, exempt.
    for (let i = 0; i < 5; i++) {
      assert.equal((await edge.get('/page', { localAddress: '127.0.0.8' })).status, 200);
      const junk = { localAddress: '127.0.0.8', headers: { 'x-forwarded-for': 'garbage<script>' } };
      assert.equal((await edge.get('/page', junk)).status, 200);
    }
    // An untrusted peer's X-Forwarded-For names nobody: its own address is limited.
    const spoof = (i: number) => ({
      localAddress: '127.0.0.7',
      headers: { 'x-forwarded-for': `203.0.113.${i}` },
    });
    for (let i = 0; i < 3; i++) assert.equal((await edge.get('/page', spoof(i))).status, 200);
    assert.equal((await edge.get('/page', spoof(9))).status, 429);
  });
});

describe('address rules behind a trusted proxy', () => {
  it('denies a denied network behind the balancer, and admits others through it', async () => {
    const origin = await startOrigin({ [LONG.split('?')[0]!]: respond(200, CACHED, 'long\n') });
    const edge = await startNode({
      origin: origin.url,
      config: { ...site({ deny: ['203.0.113.0/24'] }), proxy: { trustedProxies: ['127.0.0.8'] } },
    });
    try {
      const from = (client: string) => ({
        localAddress: '127.0.0.8',
        headers: { 'x-forwarded-for': client },
      });
      const denied = await edge.get(LONG, from('203.0.113.9'));
      assert.equal(denied.status, 403);
      assert.equal(denied.headers['cache-status'], 'strata; detail=forbidden');
      assert.match(denied.text, /your address is not allowed/);
      assert.equal((await edge.get(LONG, from('198.51.100.7'))).status, 200);
      assert.equal(origin.count(), 1);
    } finally {
      await edge.close();
      await origin.close();
    }
  });

  it('judges a client the balancer wrote with its port (203.0.113.9:4711, [2001:db8::9]:443)', async () => {
    const origin = await startOrigin({ [LONG.split('?')[0]!]: respond(200, CACHED, 'long\n') });
    const clock = createClock();
    const edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: {
        ...site({ deny: ['203.0.113.0/24', '2001:db8::/32'], rateLimit: { requestsPerSecond: 1, burst: 2 } }),
        proxy: { trustedProxies: ['127.0.0.8'] },
      },
    });
    try {
      const from = (hop: string) => ({ localAddress: '127.0.0.8', headers: { 'x-forwarded-for': hop } });
      for (const hop of ['203.0.113.9:4711', '[2001:db8::9]:443', '[2001:db8::9]']) {
        const denied = await edge.get(LONG, from(hop));
        assert.equal(denied.status, 403, hop);
        assert.match(denied.text, /your address is not allowed/);
      }
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await edge.get(LONG, from(`198.51.100.8:${5000 + i}`))).status);
      assert.deepEqual(statuses, [200, 200, 429], 'one bucket per client, whatever its source port');
      assert.equal(origin.count(), 1);
    } finally {
      await edge.close();
      await origin.close();
    }
  });

  it('judges the X-Forwarded-For the balancer extended, not a longer Forwarded chain the client wrote', async () => {
    const origin = await startOrigin({ [LONG.split('?')[0]!]: respond(200, CACHED, 'long\n') });
    const clock = createClock();
    const edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: {
        ...site({ deny: ['203.0.113.0/24'], rateLimit: { requestsPerSecond: 1, burst: 2 } }),
        proxy: { trustedProxies: ['127.0.0.8'] },
      },
    });
    try {
      // The balancer appends what it saw to X-Forwarded-For and passes the client's Forwarded on.
      const forged = (client: string, claimed: string) => ({
        localAddress: '127.0.0.8',
        headers: { 'x-forwarded-for': client, forwarded: `for=192.0.2.1, for=${claimed}` },
      });
      const denied = await edge.get(LONG, forged('203.0.113.9', '198.51.100.7'));
      assert.equal(denied.status, 403, 'a denied client naming another address in Forwarded');
      assert.match(denied.text, /your address is not allowed/);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push((await edge.get(LONG, forged('198.51.100.8', `192.0.2.${10 + i}`))).status);
      assert.deepEqual(
        statuses,
        [200, 200, 429, 429],
        'a fresh Forwarded address per request buys no fresh bucket',
      );
      assert.equal(origin.count(), 1);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});

describe('origin-bound rate limit (cache-aware)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      '/search': respond(200, CACHED, 'results\n'),
      '/hot': respond(200, CACHED, 'hot\n'),
    });
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: site({ originLimit: { requestsPerSecond: 1, burst: 2 } }),
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('throttles cache-busting query strings and forced reloads while the client still gets hits', async () => {
    const from = '127.0.0.5';
    assert.equal((await edge.get('/hot', { localAddress: from })).status, 200); // 1 origin-bound
    const before = origin.count();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const busted = await edge.get(`/search?q=${i}-${'r'.repeat(100)}`, { localAddress: from });
      statuses.push(busted.status);
    }
    assert.deepEqual(statuses.filter((s) => s === 200).length, 1, 'burst of 2: the /hot fill and one search');
    const refused = await edge.get('/search?q=again', { localAddress: from });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['ratelimit-policy'], '"origin";q=2;w=2');
    assert.ok(refused.headers['retry-after']);
    const reload = await edge.get('/hot', { localAddress: from, headers: { 'cache-control': 'no-cache' } });
    assert.equal(reload.status, 429, 'client no-cache goes to the origin: counted');
    for (let i = 0; i < 20; i++) {
      const hit = await edge.get('/hot', { localAddress: from });
      assert.equal(hit.status, 200);
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    }
    assert.equal(origin.count() - before, 1, 'one search reached the origin');
    const other = await edge.get('/search?q=other', { localAddress: '127.0.0.6' });
    assert.equal(other.status, 200, 'another client has its own budget');
  });
});

describe('address, country and content rules', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/page': respond(200, CACHED, 'page\n'),
      '/admin/panel': respond(200, CACHED, 'admin\n'),
      '/export': respond(200, CACHED, 'export\n'),
    });
    const geo = networksLookup([
      { cidr: '127.0.0.2/32', country: 'DE', region: 'EU' },
      { cidr: '127.0.0.3/32', country: 'US' },
      { cidr: '127.0.0.4/32', country: 'FR', region: 'EU' },
    ]);
    edge = await startNode({
      origin: origin.url,
      geo,
      config: site({
        deny: ['127.0.0.7', '127.0.0.64/26'],
        allow: ['127.0.0.1', '127.0.0.65'],
        countries: { allow: ['EU'] },
        block: [
          { path: '/admin' },
          { methods: ['POST'], contentTypes: ['application/xml'] },
          { path: '/export', methods: ['GET'] },
        ],
      }),
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('refuses a denied address 403 with a clear body and never asks the origin', async () => {
    const denied = await edge.get('/page', { localAddress: '127.0.0.7' });
    assert.equal(denied.status, 403);
    assert.equal(denied.text, '403 forbidden: your address is not allowed on this site\n');
    assert.equal(origin.count('/page'), 0);
  });

  it('admits clients located in an allowed region, refuses one outside it and unplaced ones', async () => {
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.2' })).status, 200, 'DE (EU)');
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.4' })).status, 200, 'FR (EU)');
    const us = await edge.get('/page', { localAddress: '127.0.0.3' });
    assert.equal(us.status, 403, 'US: not in EU');
    assert.match(us.text, /not available from your location/);
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.9' })).status, 403, 'unplaced');
    assert.equal(origin.count('/page'), 1);
  });

  it('lets allow-listed addresses through deny ranges and country rules', async () => {
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.66' })).status, 403, 'in the denied /26');
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.65' })).status, 200, 'allow-listed in it');
  });

  it('refuses filtered paths and method/content-type combinations 403', async () => {
    const admin = await edge.get('/admin/panel');
    assert.equal(admin.status, 403);
    assert.match(admin.text, /not allowed on this site/);
    const xml = await edge.get('/page', {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<a/>',
    });
    assert.equal(xml.status, 403);
    assert.equal(origin.count('/admin/panel'), 0);
  });

  it('refuses HEAD where a rule names GET: a HEAD miss would reach the origin as a GET', async () => {
    assert.equal((await edge.get('/export')).status, 403);
    const head = await edge.get('/export', { method: 'HEAD' });
    assert.equal(head.status, 403);
    assert.equal(origin.count('/export'), 0);
    assert.equal((await edge.get('/export', { method: 'OPTIONS' })).status, 200, 'other methods pass');
  });
});

describe('country rules through the lookup', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ '/page': respond(200, CACHED, 'page\n') });
    edge = await startNode({
      origin: origin.url,
      geo: networksLookup([
        { cidr: '127.0.0.2/32', country: 'DE', region: 'EU' },
        { cidr: '127.0.0.3/32', country: 'US' },
      ]),
      config: site({ countries: { deny: ['US'] } }),
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('refuses a client in a denied country and admits others and unplaced addresses', async () => {
    const us = await edge.get('/page', { localAddress: '127.0.0.3' });
    assert.equal(us.status, 403);
    assert.equal(us.text, '403 forbidden: this site is not available from your location\n');
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.2' })).status, 200);
    assert.equal((await edge.get('/page', { localAddress: '127.0.0.6' })).status, 200);
    assert.equal(origin.count('/page'), 1);
  });
});

describe('request limits per site', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ '/upload': respond(200, { 'content-type': 'text/plain' }, 'ok\n') });
    edge = await startNode({
      origin: origin.url,
      config: site({ limits: { maxUrlLength: 100, maxHeaders: 10, maxHeaderBytes: 600, maxBodySize: 1000 } }),
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers 414 to a target over maxUrlLength', async () => {
    const res = await edge.get(`/${'a'.repeat(120)}`);
    assert.equal(res.status, 414);
  });

  it('answers 431 and closes for too many header fields or bytes', async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 12; i++) many[`x-h${i}`] = 'v';
    assert.equal((await edge.get('/upload', { headers: many })).status, 431);
    assert.equal((await edge.get('/upload', { headers: { 'x-big': 'b'.repeat(700) } })).status, 431);
  });

  it('answers 413 to a body over maxBodySize before reading it, and closes the connection', async () => {
    const { text, closed } = await rawExchange(
      Number(new URL(edge.url).port),
      'POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5000\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /connection: close/i);
    assert.ok(closed);
    assert.equal(origin.count('/upload'), 0);
  });

  it('cuts a chunked body growing past maxBodySize: 413, connection closed, origin request aborted', async () => {
    const chunk = `258\r\n${'c'.repeat(600)}\r\n`;
    const { text, closed } = await rawExchange(
      Number(new URL(edge.url).port),
      `POST /upload HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}0\r\n\r\n`,
    );
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /request body too large/);
    assert.ok(closed);
    assert.equal(origin.count('/upload'), 0, 'the origin never saw a complete request');
    // Counted as the limit that acted, as the Content-Length over it before was.
    const counted = await edge.node.metrics.registry.getSingleMetricAsString('strata_security_actions_total');
    assert.match(counted, /rule="body-size",action="refused"} 2/);
  });

  it('lets a client that sends its whole body before reading read the 413 (no reset discarding it)', async () => {
    const port = Number(new URL(edge.url).port);
    const size = 4 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 'b');
    const chunked = Buffer.concat([
      Buffer.from(`${piece.length.toString(16)}\r\n`),
      piece,
      Buffer.from('\r\n'),
    ]);
    for (const framing of ['content-length', 'chunked'] as const) {
      for (let round = 0; round < 3; round++) {
        const answer = await new Promise<string>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          socket.pause(); // reads nothing until its body is sent, as many upload clients
          const got: Buffer[] = [];
          const timer = setTimeout(() => socket.destroy(), 10_000);
          socket.on('error', () => {}); // a reset ends it: what could be read before counts
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(Buffer.concat(got).toString('latin1'));
          });
          let reading = false;
          const read = (): void => {
            if (reading) return;
            reading = true;
            socket.on('data', (chunk: Buffer) => got.push(chunk));
            socket.resume();
          };
          const head = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`;
          socket.write(`POST /upload HTTP/1.1\r\nHost: a.example\r\n${head}\r\n\r\n`);
          let sent = 0;
          const pump = (): void => {
            while (sent < size && !socket.destroyed) {
              sent += piece.length;
              if (!socket.write(framing === 'chunked' ? chunked : piece)) {
                socket.once('drain', pump);
                return;
              }
            }
            if (framing === 'chunked' && !socket.destroyed) socket.write('0\r\n\r\n');
            socket.end();
            read();
          };
          // A write that failed (the node closed): the client turns to the answer.
          socket.once('error', read);
          pump();
        });
        assert.match(answer, /^HTTP\/1\.1 413 /, `${framing}, round ${round + 1}`);
      }
    }
    assert.equal(origin.count('/upload'), 0);
  });
});

describe('security in /stats, metrics and the access log', () => {
  it('shows per-site rule counts and tracked keys in /stats, and the rule in the access log line', async () => {
    const { startAdminNode } = await import('./purge-support.ts');
    const { pino } = await import('pino');
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const origin = await startOrigin({ '/page': respond(200, CACHED, 'page\n') });
    const edge = await startAdminNode({
      origin: origin.url,
      logger,
      config: {
        ...site({ rateLimit: { requestsPerSecond: 1, burst: 1 }, deny: ['127.0.0.7'] }),
        logging: { level: 'info' },
      },
    });
    try {
      assert.equal((await edge.get('/page', { localAddress: '127.0.0.2' })).status, 200);
      assert.equal((await edge.get('/page', { localAddress: '127.0.0.2' })).status, 429);
      assert.equal((await edge.get('/page', { localAddress: '127.0.0.7' })).status, 403);
      const stats = JSON.parse((await edge.call('GET', '/stats')).text);
      assert.deepEqual(stats.security.default, {
        rateLimitKeys: 1,
        originLimitKeys: 0,
        actions: { 'rate-requests': 1, deny: 1 },
      });
      const refused = lines.filter((line) => line.msg === 'request completed' && line.security !== undefined);
      assert.deepEqual(
        refused.map((line) => [line.status, line.security, line.err]),
        [
          [429, 'rate-requests', 'EDGE_ERR_CLIENT_RATE_LIMITED'],
          [403, 'deny', 'EDGE_ERR_CLIENT_FORBIDDEN'],
        ],
      );
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});

describe('ambiguous paths', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ '/account': respond(200, CACHED, 'account\n') });
    edge = await startNode({ origin: origin.url, config: site({ refuseAmbiguousPaths: true }) });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const path of [
    '/account;x.css',
    '/account%2Fx.css',
    '/account%2e%2e/x',
    '/account\\x.css',
    '//account/x.css',
    '/a%00.css',
  ]) {
    it(`refuses ${path} with 400 when refuseAmbiguousPaths is set`, async () => {
      const res = await edge.get('/', { rawPath: path });
      assert.equal(res.status, 400);
      assert.match(res.text, /ambiguous path refused/);
    });
  }

  for (const path of ['/static/../account', '/./account', '/static/..', '/account/.']) {
    it(`refuses the dot segments of ${path} with 400 when refuseAmbiguousPaths is set`, async () => {
      const res = await edge.get('/', { rawPath: path });
      assert.equal(res.status, 400);
      assert.match(res.text, /ambiguous path refused/);
    });
  }

  it('admits ordinary paths, and a ; or encoded slash in the query', async () => {
    assert.equal((await edge.get('/account')).status, 200);
    assert.equal((await edge.get('/account?next=%2Fhome;x')).status, 200);
    assert.equal(origin.count(), 2);
  });
});

describe('rate limit keys', () => {
  it('keeps one bucket per API key (header:NAME) whatever the address, and the address when the header is absent', async () => {
    const origin = await startOrigin({ '/api': respond(200, CACHED, 'api\n') });
    const clock = createClock();
    const edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: site({ rateLimit: { requestsPerSecond: 1, burst: 2, by: 'header:X-Api-Key' } }),
    });
    try {
      const statuses = async (key: string | undefined, from: string) => {
        const headers = key === undefined ? undefined : { 'x-api-key': key };
        return (await edge.get('/api', { localAddress: from, ...(headers ? { headers } : {}) })).status;
      };
      assert.equal(await statuses('key-alpha-1', '127.0.0.2'), 200);
      assert.equal(await statuses('key-alpha-1', '127.0.0.3'), 200);
      assert.equal(await statuses('key-alpha-1', '127.0.0.4'), 429, 'one bucket across addresses');
      assert.equal(await statuses('key-bravo-2', '127.0.0.2'), 200, 'another key, another bucket');
      assert.equal(await statuses(undefined, '127.0.0.2'), 200);
      assert.equal(await statuses(undefined, '127.0.0.2'), 200);
      assert.equal(await statuses(undefined, '127.0.0.2'), 429, 'no key: the address');
      assert.equal(await statuses(undefined, '127.0.0.3'), 200);
    } finally {
      await edge.close();
      await origin.close();
    }
  });

  it('keeps one bucket for the whole site with by: site', async () => {
    const origin = await startOrigin({ '/page': respond(200, CACHED, 'page\n') });
    const edge = await startNode({
      origin: origin.url,
      now: createClock().now,
      config: site({ rateLimit: { requestsPerSecond: 1, burst: 3, by: 'site' } }),
    });
    try {
      const results: number[] = [];
      for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'])
        results.push((await edge.get('/page', { localAddress: from })).status);
      assert.deepEqual(results, [200, 200, 200, 429]);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});

describe('one path for rules, block lists, the key and the origin', () => {
  it('matches rules and block lists on the path the origin reads, whatever the spelling', async () => {
    const origin = await startOrigin({
      '/account': (req, res) => {
        res.writeHead(200, { 'cache-control': 'private, no-store', 'content-type': 'text/html' });
        res.end(`PRIVATE ${req.url} for ${req.headers.cookie ?? 'nobody'}`);
      },
      '/wp-admin': respond(200, CACHED, 'admin\n'),
      [`/static/${'assets-'.repeat(16)}app.js`]: respond(
        200,
        { 'cache-control': 'max-age=600', 'content-type': 'text/javascript' },
        'app\n',
      ),
    });
    const edge = await startNode({
      origin: origin.url,
      config: {
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['origin'],
            security: { block: [{ path: '/wp-admin' }] },
            rules: [
              {
                match: { path: '/static/' },
                ttl: '10m',
                ignore: ['cache-control', 'expires', 'set-cookie'],
              },
            ],
          },
        ],
      },
    });
    try {
      const victim = await edge.get('/', {
        rawPath: '/static/../account',
        headers: { cookie: 'sid=VICTIM' },
      });
      assert.equal(victim.text, 'PRIVATE /account for sid=VICTIM', 'the origin reads /account');
      assert.doesNotMatch(String(victim.headers['cache-status']), /stored/);
      const anonymous = await edge.get('/', { rawPath: '/static/../account' });
      assert.equal(anonymous.text, 'PRIVATE /account for nobody', "never the victim's page");
      assert.equal(origin.count('/account'), 2);
      for (const spelling of [
        '/x/../wp-admin',
        '/./wp-admin',
        '/%77p-admin',
        '/wp%2Dadmin',
        '/x/%2e%2e/wp-admin',
      ]) {
        const blocked = await edge.get('/', { rawPath: spelling });
        assert.equal(blocked.status, 403, spelling);
      }
      assert.equal(origin.count('/wp-admin'), 0);
      // A rule still applies to its own path, spelled either way: one key.
      const app = `/static/${'assets-'.repeat(16)}app.js`;
      await edge.get(app);
      const again = await edge.get('/', { rawPath: `/static/./${'assets-'.repeat(16)}%61pp.js` });
      assert.match(String(again.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count(app), 1);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
