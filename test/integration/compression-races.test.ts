/**
 * Compression on the fill path under the conditions the conformance run met: a client that
 * waits for its own fill to be committed is answered from that fill whatever the stored
 * entry's freshness or fate, and a request for another coding that arrives while a
 * compressible fill runs waits for it instead of asking the origin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startNode } from '../helpers/node.ts';
import { type Route, respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const BR = { 'accept-encoding': 'gzip, deflate, br' };
const body = Buffer.from(
  `${JSON.stringify({ request_num: 1, request_headers: { 'user-agent': 'node-fetch', accept: '*/*' } })}\n`.repeat(
    40,
  ),
);
const STATE = `/state/3f0c2a4e-8d71-4b5e-9a06-${'c'.repeat(12)}/requests-seen-by-the-origin-for-this-test`;

/** A route whose body is held back until `release` is called (the fill is then in flight). */
function held(headers: Record<string, string>): {
  route: Route;
  release: () => void;
  started: () => boolean;
} {
  let go: (() => void) | undefined;
  let begun = false;
  const gate = new Promise<void>((resolve) => {
    go = resolve;
  });
  return {
    route: async (req, res) => {
      if (req.method !== 'GET') {
        res.writeHead(204);
        res.end();
        return;
      }
      begun = true;
      res.writeHead(200, { 'content-length': String(body.length), ...headers });
      res.write(body.subarray(0, 100));
      await gate;
      res.end(body.subarray(100));
    },
    release: () => go?.(),
    started: () => begun,
  };
}

describe('compression: the client of the fill and its followers', () => {
  let origin: TestOrigin;
  const clock = createClock();

  before(async () => {
    origin = await startOrigin({
      // No lifetime and no Last-Modified: stored, and stale the moment it is stored.
      [STATE]: respond(200, { 'content-type': 'text/plain', 'content-length': String(body.length) }, body),
      '/no-cache-asked': respond(
        200,
        {
          'content-type': 'application/json',
          'cache-control': 'max-age=60',
          'content-length': String(body.length),
        },
        body,
      ),
    });
  });
  after(() => origin.close());

  it('answers the client that filled a response stale on arrival with its coding, not a 502', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const res = await edge.get(STATE, { headers: BR });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], 'br');
      assert.ok(brotliDecompressSync(res.body).equals(body));
      assert.match(String(res.headers['cache-status']), /fwd=miss; fwd-status=200; stored/);
      // Stale at once: the next request asks the origin again, and gets its answer too.
      const next = await edge.get(STATE, { headers: BR });
      assert.equal(next.status, 200);
      assert.ok(brotliDecompressSync(next.body).equals(body));
      assert.equal(origin.count(STATE), 2);
    } finally {
      await edge.close();
    }
  });

  it('answers a request with Cache-Control: no-cache from the fill it caused, in its coding', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const res = await edge.get('/no-cache-asked', { headers: { ...BR, 'cache-control': 'no-cache' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], 'br');
      assert.ok(brotliDecompressSync(res.body).equals(body));
      assert.equal(origin.count('/no-cache-asked'), 1);
      const hit = await edge.get('/no-cache-asked', { headers: BR });
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/no-cache-asked'), 1);
    } finally {
      await edge.close();
    }
  });

  it('gives the waiting client the body as it came when an unsafe request invalidates the key mid-fill', async () => {
    const path = `/articles/${'long-segment-'.repeat(8)}invalidated-while-filling.json`;
    const slow = held({ 'content-type': 'application/json', 'cache-control': 'max-age=60' });
    origin.route(path, slow.route);
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const pending = edge.get(path, { headers: BR });
      assert.ok(await until(slow.started, 5000));
      const post = await request(edge.url + path, { method: 'POST', body: 'x' });
      assert.equal(post.status, 204);
      slow.release();
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], undefined);
      assert.ok(res.body.equals(body));
      assert.match(String(res.headers.vary), /Accept-Encoding/);
      // Not stored: the next request asks the origin.
      const next = await edge.get(path, { headers: BR });
      assert.ok(brotliDecompressSync(next.body).equals(body));
      assert.equal(origin.requests.filter((r) => r.path === path && r.method === 'GET').length, 2);
    } finally {
      await edge.close();
    }
  });

  it('makes a request for another coding wait for the compressible fill running, with no origin request of its own', async () => {
    const path = `/feeds/${'section-'.repeat(12)}latest.json?page=1&per_page=50`;
    const slow = held({ 'content-type': 'application/json', 'cache-control': 'max-age=60' });
    origin.route(path.split('?')[0]!, slow.route);
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const leader = request(edge.url + path);
      assert.ok(await until(slow.started, 5000));
      const follower = request(edge.url + path, { headers: { 'accept-encoding': 'gzip' } });
      // The follower is in the node (its miss work tracked beside the leader's) before the body ends.
      assert.ok(await until(() => edge.node.edge.work.size === 2, 5000));
      slow.release();
      const [identity, gzip] = await Promise.all([leader, follower]);
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.ok(identity.body.equals(body));
      assert.equal(gzip.status, 200);
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.ok(gunzipSync(gzip.body).equals(body));
      assert.equal(origin.count(path), 1);
    } finally {
      await edge.close();
    }
  });
});
