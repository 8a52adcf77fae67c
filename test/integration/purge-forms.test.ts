/**
 * The purge forms beyond urls/prefixes/tags: `hosts`, the `warning` of a purge that matched
 * nothing, and the forms operators know from other caches on the admin listener (`PURGE <url>`,
 * `Surrogate-Key`, `Fastly-Soft-Purge: 1`). The node has a plain and a TLS listener, so every URL
 * is stored under both schemes.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Agent, request as undiciRequest } from 'undici';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { request, type TestResponse } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const LONG = `/catalogue/${'winter-boots-'.repeat(6)}/size-44/item.json?colour=${'dark-'.repeat(8)}brown&sort=price`;
const PATH = LONG.split('?')[0]!;

/** Answers with an ETag and honours If-None-Match (a soft purge revalidates with a 304). */
function validated(etag: string, tags?: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const headers = { etag, 'cache-control': 'max-age=600', ...(tags ? { 'surrogate-key': tags } : {}) };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, headers);
    res.end(`body of ${req.url}`);
  };
}

describe('purge by host, PURGE, Surrogate-Key and soft headers', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let edge: AdminNode;
  let agent: Agent;
  let plainPort: string;
  let tlsPort: string;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('shop', ['shop.test', 'blog.test']);
    origin = await startOrigin({
      [PATH]: validated('"long-1"', 'catalogue boots'),
      '/a.css': validated('"a"', 'css'),
      '/b.css': validated('"b"', 'css'),
      '/tagged': validated('"t"', 'release-9 product-42'),
    });
    edge = await startAdminNode({
      origin: origin.url,
      config: {
        listeners: [
          { listen: '127.0.0.1:0' },
          { listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } },
        ],
      },
    });
    plainPort = edge.node.addresses[0]!.split(':').pop()!;
    tlsPort = edge.node.addresses[1]!.split(':').pop()!;
    agent = new Agent({
      connect: {
        ca: fixtures.ca,
        lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]),
      },
    });
  });

  after(async () => {
    await agent.close();
    await edge.close();
    await origin.close();
    fixtures.remove();
  });

  /** A GET over TLS as `host` (the key: https://host:TLSPORT/…); returns Cache-Status. */
  async function viaTls(host: string, path: string): Promise<string> {
    const res = await undiciRequest(`https://${host}:${tlsPort}${path}`, { dispatcher: agent });
    await res.body.text();
    await edge.node.idle();
    return String(res.headers['cache-status']);
  }

  /** A GET over plain HTTP with `host` in Host (the key: http://host/…). */
  async function viaPlain(host: string, path: string): Promise<string> {
    const res = await request(`http://127.0.0.1:${plainPort}${path}`, { headers: { host } });
    await edge.node.idle();
    return String(res.headers['cache-status']);
  }

  function admin(method: string, target: string, headers: Record<string, string> = {}, body?: string) {
    return request(edge.admin, {
      method,
      rawPath: target,
      headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      ...(body === undefined ? {} : { body }),
    });
  }

  const answer = (response: TestResponse) =>
    JSON.parse(response.text) as { purged: number; soft: boolean; sequence: number; warning?: string };

  it('purges everything of a host, both schemes and every port, and nothing of another host', async () => {
    for (const path of [LONG, '/a.css']) {
      await viaTls('shop.test', path);
      await viaPlain('shop.test', path);
      await viaPlain(`shop.test:${tlsPort}`, path);
      await viaPlain('blog.test', path);
    }
    assert.equal(origin.count(LONG), 4);
    assert.equal(origin.count('/a.css'), 4);
    assert.match(await viaTls('shop.test', LONG), /^strata; hit/);

    const result = await edge.purge({ hosts: ['SHOP.test.'] });
    assert.equal(result.purged, 6);
    assert.equal(result.soft, false);
    assert.equal('warning' in result, false);

    assert.match(await viaTls('shop.test', LONG), /fwd=miss/);
    assert.match(await viaPlain('shop.test', LONG), /fwd=miss/);
    assert.match(await viaPlain(`shop.test:${tlsPort}`, '/a.css'), /fwd=miss/);
    assert.match(await viaPlain('blog.test', LONG), /^strata; hit/);
    assert.equal(origin.count(LONG), 6);
    assert.equal(origin.count('/a.css'), 5);
  });

  it('purges one port of a host when the host names it', async () => {
    await viaTls('shop.test', '/b.css');
    await viaPlain('shop.test', '/b.css');
    assert.equal(origin.count('/b.css'), 2);
    // The TLS listener's port: https://shop.test:PORT and http://shop.test:PORT, not port 80.
    const result = await edge.purge({ hosts: [`shop.test:${tlsPort}`] });
    // b.css over TLS, and what the first test fetched again on that port (the long URL, a.css).
    assert.equal(result.purged, 3);
    assert.match(await viaTls('shop.test', '/b.css'), /fwd=miss/);
    assert.match(await viaPlain('shop.test', '/b.css'), /^strata; hit/);
    assert.equal(origin.count('/b.css'), 3);
  });

  it('purges a prefix naming only scheme and host on that host alone, not on hosts or ports that extend it', async () => {
    for (const host of ['docs.test', 'docs.test.example', 'docs.testing', `docs.test:${tlsPort}`]) {
      await viaPlain(host, LONG);
    }
    const before = origin.count(LONG);
    const result = await edge.purge({ prefixes: ['http://docs.test'] });
    // Both schemes of docs.test on port 80: only the plain entry is stored.
    assert.equal(result.purged, 1);
    assert.match(await viaPlain('docs.test', LONG), /fwd=miss/);
    for (const host of ['docs.test.example', 'docs.testing', `docs.test:${tlsPort}`]) {
      assert.match(await viaPlain(host, LONG), /^strata; hit/, host);
    }
    assert.equal(origin.count(LONG), before + 1);
  });

  it('answers a warning when nothing matched, and keeps the answer otherwise unchanged', async () => {
    const none = await edge.purge({ urls: [`https://shop.test/nothing/${'x'.repeat(90)}`] });
    assert.equal(none.purged, 0);
    assert.match(String(none.warning), /^nothing matched: no stored entry was removed \(URLs and prefixes/);
    const tag = await edge.purge({ tags: ['never-sent'], soft: true });
    assert.match(String(tag.warning), /newly marked stale.*tags match only responses that carried them/);
    assert.deepEqual(Object.keys(tag).sort(), ['purged', 'sequence', 'soft', 'warning']);
  });

  it('refuses a host that is not a host name', async () => {
    for (const host of ['https://shop.test', 'shop.test/a', '', 'shop test']) {
      const response = await edge.call('POST', '/purge', { hosts: [host] });
      assert.equal(response.status, 400, host);
      assert.match(answerError(response), /host|non-empty/);
    }
  });

  it('refuses URLs and prefixes whose host no request could have, instead of logging and forwarding them', async () => {
    const before = (await edge.purge({ tags: ['never-sent'] })).sequence as number;
    for (const body of [
      { urls: [`http://a b/${'catalogue/'.repeat(12)}page.html`] },
      { urls: ['http://shop.test:99999/a.css'] },
      { prefixes: ['http://[::1/static/'] },
    ]) {
      const response = await edge.call('POST', '/purge', body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match(answerError(response), /names no valid host/);
    }
    // Nothing of them was logged: the next purge takes the very next sequence.
    assert.equal((await edge.purge({ tags: ['never-sent'] })).sequence, before + 1);
  });

  it('PURGE <absolute url> purges the URL in both schemes, behind the admin token', async () => {
    await viaTls('shop.test', LONG);
    await viaPlain(`shop.test:${tlsPort}`, LONG);
    const before = origin.count(LONG);
    const url = `https://shop.test:${tlsPort}${LONG}`;
    assert.ok(url.length > 150);

    const unauthorized = await request(edge.admin, { method: 'PURGE', rawPath: url });
    assert.equal(unauthorized.status, 401);
    assert.match(await viaTls('shop.test', LONG), /^strata; hit/);

    const response = await admin('PURGE', url);
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/json');
    assert.equal(answer(response).purged, 2);
    assert.match(await viaTls('shop.test', LONG), /fwd=miss/);
    assert.match(await viaPlain(`shop.test:${tlsPort}`, LONG), /fwd=miss/);
    assert.equal(origin.count(LONG), before + 2);
  });

  it('PURGE <path> with the site in Host purges that URL', async () => {
    await viaPlain('blog.test', '/a.css');
    const before = origin.count('/a.css');
    const response = await admin('PURGE', '/a.css', { host: 'blog.test' });
    assert.equal(answer(response).purged, 1);
    assert.match(await viaPlain('blog.test', '/a.css'), /fwd=miss/);
    assert.equal(origin.count('/a.css'), before + 1);
    const missing = await admin('PURGE', '/never-stored', { host: 'blog.test' });
    assert.match(String(answer(missing).warning), /^nothing matched/);
  });

  it('PURGE <path> with a Host that is no host[:port] answers 400 and purges nothing, not another URL', async () => {
    await viaPlain('blog.test', '/a.css');
    const sequence = edge.node.purge.log.sequence;
    // `blog.test#` + `/a.css` reads as http://blog.test/ with a fragment: the home page, not /a.css.
    for (const host of ['blog.test#', 'blog.test?x', 'blog.test/other', 'blog.test#frag']) {
      const response = await admin('PURGE', '/a.css', { host });
      assert.equal(response.status, 400, `${host}: ${response.text}`);
      assert.match(JSON.parse(response.text).error, /Host/, host);
    }
    assert.equal(edge.node.purge.log.sequence, sequence, 'nothing logged, nothing purged');
    assert.match(await viaPlain('blog.test', '/a.css'), /^strata; hit/);
  });

  it('Surrogate-Key purges tags (PURGE and POST /purge), Fastly-Soft-Purge: 1 makes it soft', async () => {
    await viaPlain('blog.test', '/tagged');
    await viaTls('blog.test', '/tagged');
    assert.equal(origin.count('/tagged'), 2);

    const soft = await admin('PURGE', '/', { 'surrogate-key': 'release-9 other', 'fastly-soft-purge': '1' });
    assert.deepEqual({ ...answer(soft), sequence: 0 }, { purged: 2, soft: true, sequence: 0 });
    // Soft: the next request revalidates (a 304 from the origin), the body is kept.
    assert.match(await viaPlain('blog.test', '/tagged'), /fwd=stale/);
    assert.equal(origin.count('/tagged'), 3);
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], '"t"');

    const hard = await admin('POST', '/purge', { 'surrogate-key': 'product-42' }, '');
    assert.deepEqual({ ...answer(hard), sequence: 0 }, { purged: 2, soft: false, sequence: 0 });
    assert.match(await viaTls('blog.test', '/tagged'), /fwd=miss/);
    assert.equal(origin.count('/tagged'), 4);
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], undefined);

    // With a body, the header's tags add to it and the soft header makes it soft.
    await viaPlain('blog.test', '/tagged');
    const merged = await admin(
      'POST',
      '/purge',
      { 'surrogate-key': 'product-42', 'fastly-soft-purge': '1', 'content-type': 'application/json' },
      JSON.stringify({ urls: [`http://blog.test/never-stored/${'y'.repeat(80)}`] }),
    );
    assert.equal(answer(merged).soft, true);
    assert.equal(answer(merged).purged, 2);
    assert.equal(origin.count('/tagged'), 5);
    const logged = edge.node.purge.log.get(answer(merged).sequence)?.command;
    assert.deepEqual(logged?.tags, ['product-42']);

    // A body naming nothing to purge itself ({"soft": true}, {}): the header's tags are the purge.
    for (const body of ['{"soft": true}', '{}']) {
      const json = { 'surrogate-key': 'product-42', 'content-type': 'application/json' };
      const onlyHeader = await admin('POST', '/purge', json, body);
      assert.equal(onlyHeader.status, 200, onlyHeader.text);
      assert.equal(answer(onlyHeader).soft, body.includes('soft'));
      assert.deepEqual(edge.node.purge.log.get(answer(onlyHeader).sequence)?.command.tags, ['product-42']);
    }
  });
});

function answerError(response: TestResponse): string {
  return (JSON.parse(response.text) as { error: string }).error;
}
