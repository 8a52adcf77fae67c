/**
 * A HEAD the cache cannot answer (cache.convertHead, on by default) leads a fill with GET, as
 * nginx's proxy_cache_convert_head and Varnish's builtin VCL do: its client gets the head a GET
 * would get, the response is stored, the next GET is a hit. An unstorable answer is not
 * downloaded whole for a HEAD: its origin body is aborted. Off, a HEAD miss reaches the origin
 * as HEAD, as before.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

/** A real-length URL (over 100 characters), as a monitoring probe or link checker sends. */
const LONG = `/assets/catalogue/2026/spring/${'product-photography-'.repeat(4)}hero-banner.html?v=20260401&locale=en-GB`;
const PAGE = Buffer.from(
  `<!doctype html><title>spring</title>${'<p>lorem ipsum dolor sit amet</p>'.repeat(200)}`,
);
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
/** Most chunks a streaming route sends: 32 MiB, 5 ms apart (about 3 s if nothing stops it). */
const MAX_CHUNKS = 512;

/** What a slowly streaming origin response saw: bytes written, and whether it was cut off early. */
interface Stream {
  sent: number;
  aborted: boolean;
  ended: boolean;
}

/** Streams up to MAX_CHUNKS chunks, slowly, until the node closes the connection. */
async function streamSlowly(res: ServerResponse, headers: Record<string, string | number>, seen: Stream) {
  res.writeHead(200, headers);
  res.once('close', () => {
    if (!res.writableFinished) seen.aborted = true;
  });
  for (let i = 0; i < MAX_CHUNKS && !res.destroyed; i++) {
    res.write(CHUNK);
    seen.sent += CHUNK.length;
    await sleep(5);
  }
  if (!res.destroyed) {
    res.end();
    seen.ended = true;
  }
}

const page = (extra: Record<string, string> = {}) =>
  respond(
    200,
    {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'max-age=600',
      etag: '"spring-1"',
      'last-modified': 'Wed, 01 Apr 2026 08:00:00 GMT',
      'content-length': String(PAGE.length),
      ...extra,
    },
    PAGE,
  );

describe('a HEAD miss leads a GET fill (cache.convertHead)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const noStore: Stream = { sent: 0, aborted: false, ended: false };
  const chunkedNoStore: Stream = { sent: 0, aborted: false, ended: false };
  const tooLarge: Stream = { sent: 0, aborted: false, ended: false };
  const privateLarge: Stream = { sent: 0, aborted: false, ended: false };

  before(async () => {
    origin = await startOrigin({
      [LONG]: page(),
      '/again': page(),
      '/conditional': page(),
      '/ranged': page(),
      '/gzip': page(),
      '/gzip-get': page(),
      '/authorized': page({ 'cache-control': 'public, max-age=600' }),
      '/orders/17': page(),
      '/private': page({ 'cache-control': 'private, max-age=600' }),
      '/swr': (_req, res, hit) => {
        const text = `swr ${hit}`;
        res.writeHead(200, {
          'cache-control': 'max-age=60, stale-while-revalidate=600',
          etag: `"s${hit}"`,
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
      '/changing': (_req, res, hit) => {
        const text = `version ${hit}`;
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          etag: `"v${hit}"`,
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
      '/slow': async (_req, res) => {
        await sleep(150);
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': PAGE.length });
        res.write(PAGE.subarray(0, 100));
        await sleep(100);
        res.end(PAGE.subarray(100));
      },
      '/lang': (req, res) => {
        const text = `lang ${req.headers['accept-language']}`;
        res.writeHead(200, {
          'cache-control': 'max-age=600',
          vary: 'Accept-Language',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
      '/huge-no-store': (_req, res) =>
        streamSlowly(
          res,
          { 'cache-control': 'no-store', 'content-length': MAX_CHUNKS * CHUNK.length },
          noStore,
        ),
      '/chunked-cookie': (_req, res) =>
        streamSlowly(
          res,
          { 'cache-control': 'max-age=600', 'set-cookie': 'sid=abc; HttpOnly' },
          chunkedNoStore,
        ),
      '/chunked-too-large': (_req, res) => streamSlowly(res, { 'cache-control': 'max-age=600' }, tooLarge),
      '/private-large': (_req, res) =>
        streamSlowly(
          res,
          { 'cache-control': 'private', etag: '"big-1"', 'content-length': MAX_CHUNKS * CHUNK.length },
          privateLarge,
        ),
    });
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      cache: { maxObjectSize: 1024 * 1024 },
      config: {
        sites: [
          {
            name: 'default',
            hosts: ['*'],
            origins: ['origin'],
            rules: [{ name: 'orders', match: { path: '/orders/' }, action: 'pass' }],
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  /** The methods the origin saw for `path`, in order. */
  const methods = (path: string) => origin.requests.filter((r) => r.path === path).map((r) => r.method);

  it('fills on a cold HEAD: the origin sees one GET, the client the head alone, the next GET is a hit', async () => {
    const head = await edge.get(LONG, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(PAGE.length));
    assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(head.headers.etag, '"spring-1"');
    assert.equal(head.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.deepEqual(methods(LONG), ['GET']);
    const get = await edge.get(LONG);
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(PAGE));
    assert.match(String(get.headers['cache-status']), /^strata; hit; ttl=/);
    const again = await edge.get(LONG, { method: 'HEAD' });
    assert.equal(again.headers['content-length'], String(PAGE.length));
    assert.match(String(again.headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(origin.count(LONG), 1);
  });

  it('collapses concurrent HEADs and GETs on the one fill a HEAD leads', async () => {
    const head = request(`${edge.url}/slow`, { method: 'HEAD' });
    await sleep(30);
    const rest = await Promise.all([
      request(`${edge.url}/slow`),
      request(`${edge.url}/slow`, { method: 'HEAD' }),
      request(`${edge.url}/slow`),
    ]);
    const first = await head;
    await edge.node.idle();
    assert.equal(first.status, 200);
    assert.equal(first.body.length, 0);
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.ok(rest[0]!.body.equals(PAGE));
    assert.ok(rest[2]!.body.equals(PAGE));
    assert.equal(rest[1]!.body.length, 0);
    assert.equal(rest[1]!.headers['content-length'], String(PAGE.length));
    assert.deepEqual(methods('/slow'), ['GET']);
    assert.match(String((await edge.get('/slow')).headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(origin.count('/slow'), 1);
  });

  it('answers a HEAD collapsed onto a running fill at once, not once the whole body arrived', async () => {
    const path = `/downloads/${'installer-build-'.repeat(6)}x86_64.pkg?channel=stable&arch=x86_64`;
    const length = 16 * CHUNK.length;
    const seen = { sent: 0, ended: false };
    origin.route(path.slice(0, path.indexOf('?')), async (_req, res) => {
      res.writeHead(200, {
        'cache-control': 'max-age=600',
        'content-type': 'application/octet-stream',
        'content-length': length,
      });
      for (let i = 0; i < 16 && !res.destroyed; i++) {
        await sleep(100);
        res.write(CHUNK);
        seen.sent += CHUNK.length;
      }
      res.end();
      seen.ended = true;
    });
    // Not edge.get: that waits for the node to be idle (the fill stored).
    const lead = await request(`${edge.url}${path}`, { method: 'HEAD' });
    assert.equal(lead.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    const follower = await request(`${edge.url}${path}`, { method: 'HEAD' });
    assert.equal(seen.ended, false, `answered after the origin sent all ${seen.sent} bytes`);
    assert.equal(follower.status, 200);
    assert.equal(follower.body.length, 0);
    assert.equal(follower.headers['content-length'], String(length));
    assert.equal(follower.headers['cache-status'], 'strata; fwd=miss; collapsed');
    const get = await edge.get(path, { timeoutMs: 5000 });
    assert.equal(get.body.length, length);
    assert.ok(get.body.equals(Buffer.concat(Array.from({ length: 16 }, () => CHUNK))));
    assert.deepEqual(methods(path), ['GET']);
  });

  it('aborts the origin body of an unstorable answer nothing reads (no-store, 32 MiB)', async () => {
    const head = await edge.get('/huge-no-store', { method: 'HEAD', timeoutMs: 5000 });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(MAX_CHUNKS * CHUNK.length));
    assert.equal(head.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=no-store');
    assert.ok(await until(() => noStore.aborted || noStore.ended, 5000));
    assert.ok(noStore.aborted, 'the origin response was cut off');
    assert.ok(noStore.sent <= 16 * CHUNK.length, `${noStore.sent} bytes sent before the abort`);
    assert.deepEqual(methods('/huge-no-store'), ['GET']);
  });

  it('aborts an unstorable body of unknown length once past what is worth reading (Set-Cookie)', async () => {
    const head = await edge.get('/chunked-cookie', { method: 'HEAD', timeoutMs: 5000 });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=set-cookie');
    assert.equal(head.headers['set-cookie']?.[0], 'sid=abc; HttpOnly');
    assert.ok(await until(() => chunkedNoStore.aborted || chunkedNoStore.ended, 5000));
    assert.ok(chunkedNoStore.aborted, 'the origin response was cut off');
    assert.ok(chunkedNoStore.sent <= 16 * CHUNK.length, `${chunkedNoStore.sent} bytes sent`);
  });

  it('stops a HEAD-led fill of unknown length once it is over maxObjectSize and nobody reads it', async () => {
    const head = await edge.get('/chunked-too-large', { method: 'HEAD', timeoutMs: 5000 });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.ok(await until(() => tooLarge.aborted || tooLarge.ended, 5000));
    assert.ok(tooLarge.aborted, 'the origin response was cut off');
    // maxObjectSize is 1 MiB: what was read past it is a few chunks in flight, not 32 MiB.
    assert.ok(tooLarge.sent <= 4 * 1024 * 1024, `${tooLarge.sent} bytes sent`);
    assert.equal(edge.node.edge.store.lookup(`${edge.url}/chunked-too-large`, {}).kind, 'miss');
  });

  it('aborts the origin body behind a GET answered 304 from an unstorable 200 too (private)', async () => {
    const get = await edge.get('/private-large', {
      headers: { 'if-none-match': '"big-1"' },
      timeoutMs: 5000,
    });
    assert.equal(get.status, 304);
    assert.equal(get.body.length, 0);
    assert.equal(get.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=private');
    assert.ok(await until(() => privateLarge.aborted || privateLarge.ended, 5000));
    assert.ok(privateLarge.aborted, 'the origin response was cut off');
    assert.ok(privateLarge.sent <= 16 * CHUNK.length, `${privateLarge.sent} bytes sent`);
  });

  it('answers a HEAD whose conditionals the fill satisfies 304, and stores the response', async () => {
    const head = await edge.get('/conditional', {
      method: 'HEAD',
      headers: { 'if-none-match': '"spring-1"' },
    });
    assert.equal(head.status, 304);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, '"spring-1"');
    assert.equal(head.headers['content-length'], undefined);
    assert.match(String(head.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
    const seen = origin.requests.find((r) => r.path === '/conditional')!;
    assert.equal(seen.method, 'GET');
    assert.equal(seen.headers['if-none-match'], undefined, 'the fill asks for the whole response');
    const since = await edge.get('/conditional', {
      method: 'HEAD',
      headers: { 'if-modified-since': 'Wed, 01 Apr 2026 08:00:00 GMT' },
    });
    assert.equal(since.status, 304);
    assert.ok((await edge.get('/conditional')).body.equals(PAGE));
    assert.equal(origin.count('/conditional'), 1);
  });

  it('ignores a HEAD’s Range (RFC 9110 §14.2): the whole response is fetched and stored', async () => {
    const head = await edge.get('/ranged', { method: 'HEAD', headers: { range: 'bytes=0-9' } });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(PAGE.length));
    assert.equal(head.headers['content-range'], undefined);
    assert.equal(origin.requests.find((r) => r.path === '/ranged')!.headers.range, undefined);
    const part = await edge.get('/ranged', { headers: { range: 'bytes=0-9' } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(PAGE.subarray(0, 10)));
    assert.equal(origin.count('/ranged'), 1);
  });

  it('gives a HEAD the head a GET gets for a compressible page (its coding and length)', async () => {
    const gzip = { 'accept-encoding': 'gzip' };
    const head = await edge.get('/gzip', { method: 'HEAD', headers: gzip });
    const get = await edge.get('/gzip-get', { headers: gzip });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-encoding'], 'gzip');
    assert.equal(get.headers['content-encoding'], 'gzip');
    assert.equal(head.headers['content-length'], get.headers['content-length']);
    assert.equal(head.headers.vary, get.headers.vary);
    const hit = await edge.get('/gzip', { headers: gzip });
    assert.equal(hit.headers['content-length'], head.headers['content-length']);
    assert.match(String(hit.headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(origin.count('/gzip'), 1);
  });

  it('fills a Vary variant a HEAD misses (vary-miss)', async () => {
    await edge.get('/lang', { headers: { 'accept-language': 'en' } });
    const head = await edge.get('/lang', { method: 'HEAD', headers: { 'accept-language': 'fr' } });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(Buffer.byteLength('lang fr')));
    assert.equal(head.headers['cache-status'], 'strata; fwd=vary-miss; fwd-status=200; stored');
    const fr = await edge.get('/lang', { headers: { 'accept-language': 'fr' } });
    assert.equal(fr.text, 'lang fr');
    assert.match(String(fr.headers['cache-status']), /^strata; hit; ttl=/);
    assert.deepEqual(methods('/lang'), ['GET', 'GET']);
  });

  it('keeps a HEAD with Authorization, or behind a pass rule, a HEAD to the origin', async () => {
    const auth = await edge.get('/authorized', {
      method: 'HEAD',
      headers: { authorization: 'Bearer 4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c' },
    });
    assert.equal(auth.status, 200);
    assert.equal(auth.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=head');
    const passed = await edge.get('/orders/17', { method: 'HEAD' });
    assert.equal(passed.status, 200);
    assert.equal(passed.headers['cache-status'], 'strata; fwd=bypass; fwd-status=200; detail=orders');
    assert.deepEqual(methods('/authorized'), ['HEAD']);
    assert.deepEqual(methods('/orders/17'), ['HEAD']);
  });

  it('marks a stored GET stale when a HEAD that reached the origin shows another entity (RFC 9111 §4.3.5)', async () => {
    const path = `/catalogue/${'spring-summer-lookbook-'.repeat(4)}index.html?edition=2027`;
    let version = 1;
    origin.route(path, (req, res) => {
      const etag = `"lookbook-${version}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, 'cache-control': 'max-age=600' });
        res.end();
        return;
      }
      const body = `lookbook edition ${version}`;
      res.writeHead(200, { etag, 'cache-control': 'max-age=600', 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    const auth = { authorization: 'Bearer 4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c' };
    assert.equal((await edge.get(path)).text, 'lookbook edition 1');
    // The same entity: the stored GET stays fresh.
    await edge.get(path, { method: 'HEAD', headers: auth });
    assert.match(String((await edge.get(path)).headers['cache-status']), /^strata; hit/);
    version = 2;
    const head = await edge.get(path, { method: 'HEAD', headers: auth });
    assert.equal(head.headers.etag, '"lookbook-2"');
    const next = await edge.get(path);
    assert.equal(next.text, 'lookbook edition 2');
    assert.match(String(next.headers['cache-status']), /^strata; fwd=stale; fwd-status=200; stored/);
    assert.deepEqual(methods(path), ['GET', 'HEAD', 'HEAD', 'GET']);
  });

  it('keeps a HEAD with Authorization a HEAD to the origin while a GET fill of its key runs', async () => {
    origin.route('/account/summary', async (_req, res) => {
      await sleep(150);
      res.writeHead(200, {
        'cache-control': 'public, max-age=600',
        'content-type': 'text/html; charset=utf-8',
        'content-length': PAGE.length,
      });
      res.end(PAGE);
    });
    const get = request(`${edge.url}/account/summary`);
    assert.ok(await until(() => origin.count('/account/summary') === 1, 2000));
    const head = await edge.get('/account/summary', {
      method: 'HEAD',
      headers: { authorization: 'Bearer 4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c' },
    });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(PAGE.length));
    assert.equal(head.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=head');
    assert.ok((await get).body.equals(PAGE));
    assert.deepEqual(methods('/account/summary'), ['GET', 'HEAD']);
  });

  it('sends a HEAD for a key known uncacheable to the origin as HEAD (hit-for-pass)', async () => {
    const first = await edge.get('/private', { method: 'HEAD' });
    assert.equal(first.status, 200);
    assert.equal(first.body.length, 0);
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=private');
    const second = await edge.get('/private', { method: 'HEAD' });
    assert.equal(second.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=head');
    assert.deepEqual(methods('/private'), ['GET', 'HEAD']);
  });

  it('stores the new response a HEAD revalidating a stale entry brings', async () => {
    assert.equal((await edge.get('/changing')).text, 'version 1');
    clock.advance(120);
    const head = await edge.get('/changing', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, '"v2"');
    assert.equal(head.headers['content-length'], String(Buffer.byteLength('version 2')));
    assert.equal(head.headers['cache-status'], 'strata; fwd=stale; fwd-status=200; stored');
    const get = await edge.get('/changing');
    assert.equal(get.text, 'version 2');
    assert.match(String(get.headers['cache-status']), /^strata; hit; ttl=/);
    assert.deepEqual(methods('/changing'), ['GET', 'GET']);
  });

  it('stores what the background revalidation a stale HEAD starts brings (stale-while-revalidate)', async () => {
    assert.equal((await edge.get('/swr')).text, 'swr 1');
    clock.advance(120);
    const head = await edge.get('/swr', { method: 'HEAD' });
    assert.equal(head.headers.etag, '"s1"');
    assert.match(String(head.headers['cache-status']), /^strata; hit; ttl=-/);
    const get = await edge.get('/swr');
    assert.equal(get.text, 'swr 2');
    assert.match(String(get.headers['cache-status']), /^strata; hit; ttl=/);
    assert.deepEqual(methods('/swr'), ['GET', 'GET']);
  });

  it('answers HEAD alone when the fill’s GET is cut short, and stores nothing', async () => {
    origin.route('/cut', (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 1000 });
      res.write('x'.repeat(10));
      setTimeout(() => res.destroy(), 20);
    });
    const head = await edge.get('/cut', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(edge.node.edge.store.lookup(`${edge.url}/cut`, {}).kind, 'miss');
    const get = await edge.get('/cut');
    assert.equal(get.complete, false);
    assert.equal(origin.count('/cut'), 2);
  });
});

describe('cache.convertHead: false', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ [LONG]: page() });
    edge = await startNode({ origin: origin.url, cache: { convertHead: false } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('passes a HEAD miss to the origin as HEAD and stores nothing', async () => {
    const head = await edge.get(LONG, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(PAGE.length));
    assert.equal(head.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; detail=head');
    const get = await edge.get(LONG);
    assert.equal(get.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.deepEqual(
      origin.requests.map((r) => r.method),
      ['HEAD', 'GET'],
    );
  });
});
