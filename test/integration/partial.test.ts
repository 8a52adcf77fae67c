import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const BODY = '0123456789';

/** An origin that honours a single `bytes=a-b` range, as a static file server does. */
function ranged(req: IncomingMessage, res: ServerResponse): void {
  const headers = { 'cache-control': 'max-age=60', etag: '"v1"', 'content-type': 'text/plain' };
  const match = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
  if (match === null) {
    res.writeHead(200, headers);
    res.end(BODY);
    return;
  }
  const start = Number(match[1]);
  const end = Math.min(Number(match[2]), BODY.length - 1);
  res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${BODY.length}` });
  res.end(BODY.slice(start, end + 1));
}

describe('partial content (RFC 9111 §3.3)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({ '/a': ranged, '/b': ranged, '/c': ranged });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('stores a 206 and answers ranges inside it from the cache', async () => {
    const first = await edge.get('/a', { headers: { range: 'bytes=2-7' } });
    assert.equal(first.status, 206);
    assert.equal(first.text, '234567');
    assert.equal(first.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=2-7');
    clock.advance(1);
    const inside = await edge.get('/a', { headers: { range: 'bytes=3-5' } });
    assert.equal(inside.status, 206);
    assert.equal(inside.text, '345');
    assert.equal(inside.headers['content-range'], 'bytes 3-5/10');
    assert.equal(inside.headers['content-length'], '3');
    assert.equal(inside.headers['cache-status'], 'strata; hit; ttl=59');
    assert.equal(inside.headers.age, '1');
    const same = await edge.get('/a', { headers: { range: 'bytes=2-7' } });
    assert.equal(same.text, '234567');
    assert.equal(origin.count('/a'), 1);
  });

  it('sends a range outside the stored piece to the origin', async () => {
    await edge.get('/b', { headers: { range: 'bytes=0-3' } });
    const outside = await edge.get('/b', { headers: { range: 'bytes=2-5' } });
    assert.equal(outside.status, 206);
    assert.equal(outside.text, '2345');
    assert.equal(outside.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    // This origin ignores suffix ranges: its 200 is stored as the full response.
    const suffix = await edge.get('/b', { headers: { range: 'bytes=-2' } });
    assert.equal(suffix.status, 200);
    assert.equal(suffix.text, BODY);
    assert.equal(suffix.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.count('/b'), 3);
  });

  it('never answers a request for the whole from a partial entry; the full response replaces it', async () => {
    await edge.get('/c', { headers: { range: 'bytes=0-4' } });
    const whole = await edge.get('/c');
    assert.equal(whole.status, 200);
    assert.equal(whole.text, BODY);
    assert.equal(whole.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, undefined);
    const fromFull = await edge.get('/c', { headers: { range: 'bytes=6-' } });
    assert.equal(fromFull.status, 206);
    assert.equal(fromFull.text, '6789');
    assert.equal(fromFull.headers['cache-status'], 'strata; hit; ttl=60');
    const again = await edge.get('/c');
    assert.equal(again.status, 200);
    assert.equal(again.text, BODY);
    assert.equal(origin.count('/c'), 2);
  });
});
