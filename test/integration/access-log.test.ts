import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { refusalDetail } from '../../src/observability/cache-status.ts';
import { createClock } from '../helpers/clock.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

describe('the access log', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    origin = await startOrigin({
      '/page': respond(200, { 'cache-control': 'max-age=60' }, 'page'),
      '/big': respond(200, { 'cache-control': 'max-age=60' }, Buffer.alloc(64 * 1024, 3)),
      '/private': respond(200, { 'cache-control': 'no-store' }, 'nope'),
      '/swr': respond(200, { 'cache-control': 'max-age=10, stale-while-revalidate=60' }, 'swr'),
    });
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      logger: pino({ level: 'info' }, sink),
      config: { logging: { level: 'info', access: true } },
      cache: { memoryObjectSize: 1024, chunkSize: 16 * 1024 },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const requests = () => lines.filter((line) => line.msg === 'request completed');

  it('writes exactly one line per request, with the cache outcome, for hits, misses, passes and refusals', async () => {
    await edge.get('/page');
    await edge.get('/page');
    await edge.get('/big');
    await edge.get('/big'); // a hit streamed from LMDB chunks
    await edge.get('/private');
    await rawExchange(Number(new URL(edge.url).port), 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const seen = requests().map((line) => [line.path ?? '', line.cache, line.status, line.insert]);
    assert.deepEqual(seen, [
      ['/page', 'miss', 200, 'stored'],
      ['/page', 'hit', 200, undefined],
      ['/big', 'miss', 200, 'stored'],
      ['/big', 'hit', 200, undefined],
      ['/private', 'miss', 200, 'not-storable:no-store'],
      ['', 'rejected', 400, undefined],
    ]);
    const bigHit = requests()[3]!;
    assert.equal(bigHit.bytes, 64 * 1024);
    assert.equal(bigHit.complete, true);
  });

  it('writes a line for each request the HTTP parser refuses, and answers it as before', async () => {
    const port = Number(new URL(edge.url).port);
    const before = requests().length;
    const refusals: Array<[string, RegExp, string]> = [
      [
        'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        /^HTTP\/1\.1 400 Bad Request\r\nCache-Status: strata; detail=bad-request\r\nConnection: close\r\n\r\n$/,
        'EDGE_ERR_CLIENT_BAD_REQUEST',
      ],
      [
        `GET /${'x'.repeat(120)} HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        /^HTTP\/1\.1 431 Request Header Fields Too Large\r\nCache-Status: strata; detail=headers-too-large\r\nConnection: close\r\n\r\n$/,
        'EDGE_ERR_CLIENT_HEADERS_TOO_LARGE',
      ],
      ['GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 400 /, 'EDGE_ERR_CLIENT_BAD_REQUEST'],
      // A target longer than the whole head may be (RFC 9112 §3: 414, not 431), sent in one
      // piece or in one 64 KiB read.
      [
        `GET /search?q=${'long-query-term-'.repeat(1280)} HTTP/1.1\r\nHost: a\r\n\r\n`,
        /^HTTP\/1\.1 414 URI Too Long\r\nCache-Status: strata; detail=url-too-long\r\nConnection: close\r\n\r\n$/,
        'EDGE_ERR_CLIENT_URL_TOO_LONG',
      ],
      [
        `GET /${'p'.repeat(64 * 1024)} HTTP/1.1\r\nHost: a\r\n\r\n`,
        /^HTTP\/1\.1 414 URI Too Long\r\nCache-Status: strata; detail=url-too-long\r\nConnection: close\r\n\r\n$/,
        'EDGE_ERR_CLIENT_URL_TOO_LONG',
      ],
    ];
    for (const [payload, answer, code] of refusals) {
      const { text, closed } = await rawExchange(port, payload);
      assert.match(text, answer);
      // The detail is the logged code's own words, as for the refusals the handler answers.
      assert.match(text, new RegExp(`^Cache-Status: strata; detail=${refusalDetail(code)}\r$`, 'm'));
      assert.ok(closed);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = requests().slice(before);
    assert.deepEqual(
      logged.map((line) => [line.cache, line.status, line.err, line.method, line.client]),
      refusals.map(([, , code], i) => ['rejected', [400, 431, 400, 414, 414][i], code, '-', '127.0.0.1']),
    );
    assert.match(String(logged[0]!.errDetail), /HPE_/);
    const metrics = await edge.node.metrics.registry.getSingleMetricAsString('strata_cache_lookups_total');
    assert.match(metrics, /result="rejected"} [4-9]/);
  });

  it('writes one line for a background revalidation, with what it stored', async () => {
    await edge.get('/swr');
    clock.advance(15);
    const before = lines.length;
    const stale = await edge.get('/swr'); // resolves once the background work is done
    assert.equal(stale.text, 'swr');
    assert.equal(origin.count('/swr'), 2);
    const written = lines.slice(before).map((line) => [line.msg, line.path, line.cache, line.insert]);
    assert.deepEqual(written, [
      ['request completed', '/swr', 'stale-while-revalidate', undefined],
      ['background revalidation completed', '/swr', 'revalidated', 'stored'],
    ]);
  });
});
