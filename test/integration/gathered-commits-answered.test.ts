/**
 * Commits a client is answered after (gathered-commits.ts, cache.commitDelay): a miss whose
 * client wants a coding of a compressible body (answered from the stored coding made from it),
 * a coding made from a stored entry, and the rest of a stored partial combined with it are
 * each answered from what was committed. Those commits go at once: the client does not wait
 * cache.commitDelay for other commits to share their transaction.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { request, type TestResponse } from '../helpers/http.ts';
import { metricsDelta } from '../helpers/metrics.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** Far longer than any of these requests takes when its commit goes at once. */
const DELAY = '1s';
const QUICK_MS = 600;

const page = Buffer.from(`<!doctype html><title>catalogue</title>${'<p>winter collection</p>'.repeat(200)}`);
const media = Buffer.alloc(10_000, 'abcdefghij');

async function timed(url: string, headers: Record<string, string>): Promise<TestResponse & { ms: number }> {
  const start = performance.now();
  const response = await request(url, { headers, timeoutMs: 10_000 });
  return { ...response, ms: performance.now() - start };
}

describe('commits a client waits for go at once', () => {
  let origin: TestOrigin;
  let edge: TestNode | undefined;

  before(async () => {
    origin = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(200, {
          'content-type': 'text/html',
          'content-length': page.length,
          'cache-control': 'public, max-age=600',
          etag: '"page-1"',
        });
        res.end(page);
      },
      '/media': (req, res) => {
        const headers = {
          'content-type': 'application/octet-stream',
          'cache-control': 'public, max-age=600',
          etag: '"media-1"',
          'accept-ranges': 'bytes',
        };
        const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
        if (range === null) {
          res.writeHead(200, { ...headers, 'content-length': media.length });
          res.end(media);
          return;
        }
        const start = Number(range[1]);
        const end = range[2] === '' ? media.length - 1 : Math.min(Number(range[2]), media.length - 1);
        res.writeHead(206, {
          ...headers,
          'content-range': `bytes ${start}-${end}/${media.length}`,
          'content-length': end - start + 1,
        });
        res.end(media.subarray(start, end + 1));
      },
    });
  });
  afterEach(async () => {
    await edge?.close();
    edge = undefined;
  });
  after(() => origin.close());

  it('answers a miss for a coding of a compressible body without waiting for the delay', async () => {
    edge = await startNode({ origin: origin.url, cache: { commitDelay: DELAY } });
    const counters = await metricsDelta(edge.node.metrics.registry);
    const miss = await timed(`${edge.url}/page?miss`, { 'accept-encoding': 'gzip' });
    assert.equal(miss.status, 200);
    assert.equal(miss.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(miss.body), page);
    assert.equal(miss.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.ok(miss.ms < QUICK_MS, `answered in ${Math.round(miss.ms)} ms`);
    const hit = await timed(`${edge.url}/page?miss`, { 'accept-encoding': 'gzip' });
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.deepEqual(gunzipSync(hit.body), page);
    assert.equal(origin.count('/page?miss'), 1);
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_commit_transactions_total{trigger="delay"}'], undefined);
  });

  it('answers a coding made from a stored entry without waiting for the delay', async () => {
    edge = await startNode({ origin: origin.url, cache: { commitDelay: DELAY } });
    await edge.get('/page?made');
    const counters = await metricsDelta(edge.node.metrics.registry);
    const made = await timed(`${edge.url}/page?made`, { 'accept-encoding': 'gzip' });
    assert.equal(made.status, 200);
    assert.equal(made.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(made.body), page);
    assert.match(String(made.headers['cache-status']), /^strata; hit/);
    assert.ok(made.ms < QUICK_MS, `answered in ${Math.round(made.ms)} ms`);
    assert.equal(origin.count('/page?made'), 1);
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_commit_transactions_total{trigger="delay"}'], undefined);
  });

  it('answers a range combined with a stored partial without waiting for the delay', async () => {
    edge = await startNode({ origin: origin.url, cache: { commitDelay: DELAY } });
    const first = await edge.get('/media', { headers: { range: 'bytes=0-999' } });
    assert.equal(first.status, 206);
    const counters = await metricsDelta(edge.node.metrics.registry);
    const combined = await timed(`${edge.url}/media`, { range: 'bytes=500-2999' });
    assert.equal(combined.status, 206);
    assert.equal(combined.headers['content-range'], 'bytes 500-2999/10000');
    assert.deepEqual(combined.body, media.subarray(500, 3000));
    assert.equal(combined.headers['cache-status'], 'strata; fwd=partial; fwd-status=206; stored');
    assert.ok(combined.ms < QUICK_MS, `answered in ${Math.round(combined.ms)} ms`);
    const hit = await timed(`${edge.url}/media`, { range: 'bytes=100-2500' });
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.deepEqual(hit.body, media.subarray(100, 2501));
    assert.equal(origin.count('/media'), 2);
    const delta = await counters.delta();
    assert.equal(delta['strata_cache_commit_transactions_total{trigger="delay"}'], undefined);
  });
});
