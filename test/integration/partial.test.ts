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
    origin = await startOrigin({ '/a': ranged, '/b': ranged, '/c': ranged, '/d': ranged });
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

  it('answers a Range miss whose If-None-Match matches with 304, If-None-Match before Range (RFC 9110 §13.2.2)', async () => {
    const conditional = await edge.get('/d', {
      headers: { range: 'bytes=2-7', 'if-none-match': '"v0", "v1"' },
    });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.text, '');
    assert.equal(conditional.headers.etag, '"v1"');
    assert.equal(conditional.headers['content-range'], undefined);
    assert.equal(conditional.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    // The 206 was stored all the same: the range without the condition is a hit.
    const hit = await edge.get('/d', { headers: { range: 'bytes=2-7' } });
    assert.equal(hit.status, 206);
    assert.equal(hit.text, '234567');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    // Another entity tag: the range is answered (a conditional is never answered from a partial
    // entry: it goes to the origin, unconditional, and its 206 is answered).
    const other = await edge.get('/d', { headers: { range: 'bytes=3-5', 'if-none-match': '"v0"' } });
    assert.equal(other.status, 206);
    assert.equal(other.text, '345');
    assert.equal(other.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    assert.equal(origin.count('/d'), 2);
  });

  it('sends a range outside the stored piece to the origin', async () => {
    await edge.get('/b', { headers: { range: 'bytes=0-3' } });
    // Next to the stored piece, with a strong ETag: only the missing bytes are asked for (§3.4).
    const outside = await edge.get('/b', { headers: { range: 'bytes=2-5' } });
    assert.equal(outside.status, 206);
    assert.equal(outside.text, '2345');
    assert.equal(outside.headers['cache-status'], 'strata; fwd=partial; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=4-5');
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

/**
 * An origin serving one representation per path, honouring single ranges (`a-b`, `a-`, `-n`)
 * and If-Range (a strong ETag that does not match: the whole body, 200), as a file server does.
 */
function representations(): {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  set(path: string, body: Buffer, etag: string): void;
} {
  const current = new Map<string, { body: Buffer; etag: string }>();
  return {
    set: (path, body, etag) => current.set(path, { body, etag }),
    handler(req, res) {
      const { body, etag } = current.get(req.url ?? '')!;
      const headers = { 'cache-control': 'max-age=60', etag, 'content-type': 'application/octet-stream' };
      const ifRange = req.headers['if-range'];
      const match = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
      if (match === null || (ifRange !== undefined && ifRange !== etag)) {
        res.writeHead(200, { ...headers, 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      const size = body.length;
      const start = match[1] === '' ? Math.max(0, size - Number(match[2])) : Number(match[1]);
      const end = match[1] === '' || match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}` });
      res.end(body.subarray(start, end + 1));
    },
  };
}

describe('combining partial content (RFC 9111 §3.4)', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const files = representations();
  const text = Buffer.from(BODY);

  before(async () => {
    for (const path of ['/d', '/e', '/f', '/g', '/h']) files.set(path, text, '"v1"');
    files.set('/g', text, 'W/"v1"');
    const handler = files.handler;
    origin = await startOrigin({ '/d': handler, '/e': handler, '/f': handler, '/g': handler, '/h': handler });
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('asks only for the missing bytes with If-Range, stores the union, and completes to a 200 entry', async () => {
    const first = await edge.get('/d', { headers: { range: 'bytes=0-3' } });
    assert.equal(first.text, '0123');
    const more = await edge.get('/d', { headers: { range: 'bytes=2-7' } });
    assert.equal(more.status, 206);
    assert.equal(more.text, '234567');
    assert.equal(more.headers['content-range'], 'bytes 2-7/10');
    assert.equal(more.headers['cache-status'], 'strata; fwd=partial; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=4-7');
    assert.equal(origin.requests.at(-1)?.headers['if-range'], '"v1"');
    assert.equal(origin.count('/d'), 2);
    // The union 0-7 answers what lies inside it.
    const inside = await edge.get('/d', { headers: { range: 'bytes=1-6' } });
    assert.equal(inside.status, 206);
    assert.equal(inside.text, '123456');
    assert.equal(inside.headers['cache-status'], 'strata; hit; ttl=60');
    assert.equal(origin.count('/d'), 2);
    // The rest completes the representation: stored as a complete 200 entry.
    const rest = await edge.get('/d', { headers: { range: 'bytes=5-' } });
    assert.equal(rest.status, 206);
    assert.equal(rest.text, '56789');
    assert.equal(rest.headers['content-range'], 'bytes 5-9/10');
    assert.equal(rest.headers['cache-status'], 'strata; fwd=partial; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=8-9');
    assert.equal(origin.requests.at(-1)?.headers['if-range'], '"v1"');
    const whole = await edge.get('/d');
    assert.equal(whole.status, 200);
    assert.equal(whole.text, BODY);
    assert.equal(whole.headers['content-length'], '10');
    assert.equal(whole.headers['content-range'], undefined);
    assert.equal(whole.headers['cache-status'], 'strata; hit; ttl=60');
    const suffix = await edge.get('/d', { headers: { range: 'bytes=-3' } });
    assert.equal(suffix.status, 206);
    assert.equal(suffix.text, '789');
    assert.equal(origin.count('/d'), 3);
  });

  it('combines a piece before the stored one', async () => {
    await edge.get('/e', { headers: { range: 'bytes=5-9' } });
    const before = await edge.get('/e', { headers: { range: 'bytes=0-6' } });
    assert.equal(before.status, 206);
    assert.equal(before.text, '0123456');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=0-4');
    const whole = await edge.get('/e');
    assert.equal(whole.status, 200);
    assert.equal(whole.text, BODY);
    assert.equal(whole.headers['cache-status'], 'strata; hit; ttl=60');
    assert.equal(origin.count('/e'), 2);
  });

  it('stores the 200 the origin sends when the validator changed, and answers the range from it', async () => {
    await edge.get('/f', { headers: { range: 'bytes=0-3' } });
    files.set('/f', Buffer.from('abcdefghij'), '"v2"');
    const changed = await edge.get('/f', { headers: { range: 'bytes=2-7' } });
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=4-7');
    assert.equal(origin.requests.at(-1)?.headers['if-range'], '"v1"');
    assert.equal(changed.status, 206);
    assert.equal(changed.text, 'cdefgh');
    assert.equal(changed.headers['content-range'], 'bytes 2-7/10');
    assert.equal(changed.headers['cache-status'], 'strata; fwd=partial; fwd-status=200; stored');
    const whole = await edge.get('/f');
    assert.equal(whole.status, 200);
    assert.equal(whole.text, 'abcdefghij');
    assert.equal(whole.headers.etag, '"v2"');
    assert.equal(whole.headers['cache-status'], 'strata; hit; ttl=60');
    assert.equal(origin.count('/f'), 2);
  });

  it('does not combine on a weak ETag: the client range goes as it is, without If-Range', async () => {
    await edge.get('/g', { headers: { range: 'bytes=0-3' } });
    const next = await edge.get('/g', { headers: { range: 'bytes=2-7' } });
    assert.equal(next.text, '234567');
    assert.equal(next.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=2-7');
    assert.equal(origin.requests.at(-1)?.headers['if-range'], undefined);
  });

  it('does not combine a range apart from the stored piece', async () => {
    await edge.get('/h', { headers: { range: 'bytes=0-2' } });
    const apart = await edge.get('/h', { headers: { range: 'bytes=6-8' } });
    assert.equal(apart.text, '678');
    assert.equal(apart.headers['cache-status'], 'strata; fwd=miss; fwd-status=206; stored');
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=6-8');
    assert.equal(origin.requests.at(-1)?.headers['if-range'], undefined);
  });
});

describe('combining partial content stored in several chunks', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock();
  const files = representations();
  const big = Buffer.alloc(100_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 0xff;

  before(async () => {
    files.set('/big', big, '"big1"');
    origin = await startOrigin({ '/big': files.handler });
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      cache: { chunkSize: 16 * 1024, memoryObjectSize: 1024 },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('writes the union chunk by chunk and answers byte for byte', async () => {
    const first = await edge.get('/big', { headers: { range: 'bytes=30000-69999' } });
    assert.deepEqual(first.body, big.subarray(30000, 70000));
    const before = await edge.get('/big', { headers: { range: 'bytes=10000-40000' } });
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=10000-29999');
    assert.equal(before.status, 206);
    assert.deepEqual(before.body, big.subarray(10000, 40001));
    const after = await edge.get('/big', { headers: { range: 'bytes=50000-' } });
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=70000-99999');
    assert.deepEqual(after.body, big.subarray(50000));
    assert.equal(after.headers['content-range'], 'bytes 50000-99999/100000');
    // 10000-99999 stored: the first bytes complete it.
    const start = await edge.get('/big', { headers: { range: 'bytes=0-20000' } });
    assert.equal(origin.requests.at(-1)?.headers.range, 'bytes=0-9999');
    assert.deepEqual(start.body, big.subarray(0, 20001));
    const whole = await edge.get('/big');
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['cache-status'], 'strata; hit; ttl=60');
    assert.deepEqual(whole.body, big);
    assert.equal(origin.count('/big'), 4);
  });
});
