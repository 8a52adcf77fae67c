/**
 * Bodies of many tiny chunks, and a failing origin with many clients waiting on one key: the
 * body is delivered and stored whole; the waiters are answered (5xx or stale) after a bounded
 * number of origin requests, not one each.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { request, type TestResponse } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const TINY_CHUNKS = 125_000;
const WAITERS = 50;
const longPath = (name: string) => `/api/v2/${name}/${'inventory-report-'.repeat(6)}?region=eu-west&page=1`;

/** Writes `count` one-byte chunks (chunked encoding), corked so the origin sends them fast. */
function tinyChunks(res: ServerResponse, count: number): void {
  res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream' });
  res.cork();
  for (let i = 0; i < count; i++) res.write(String.fromCharCode(97 + (i % 26)));
  res.uncork();
  res.end();
}

function expectedTiny(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCharCode(97 + (i % 26));
  return text;
}

async function reached(check: () => boolean, ms = 5000): Promise<void> {
  assert.ok(await until(check, ms, 5), 'condition not reached in time');
}

describe('a body of many tiny chunks', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({ '/tiny': (_req, res) => tinyChunks(res, TINY_CHUNKS) });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('delivers and stores a body of 125,000 one-byte chunks whole', async () => {
    const first = await edge.get('/tiny');
    assert.equal(first.status, 200);
    assert.equal(first.complete, true);
    assert.equal(first.body.length, TINY_CHUNKS);
    assert.equal(first.text, expectedTiny(TINY_CHUNKS));
    assert.match(String(first.headers['cache-status']), /stored/);
    const second = await edge.get('/tiny');
    assert.equal(second.text, expectedTiny(TINY_CHUNKS));
    assert.match(String(second.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/tiny'), 1);
  });
});

describe('many clients waiting on a failing origin', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const clock = createClock(Date.now());
  const holds = new Map<string, () => void>();

  /** The first request of `path` waits until released; every answer is `fail(res)`. */
  function failing(path: string, fail: (res: ServerResponse) => void): void {
    const { promise, resolve } = Promise.withResolvers<void>();
    holds.set(path, resolve);
    let first = true;
    origin.route(path.split('?')[0]!, async (_req, res) => {
      if (first) {
        first = false;
        await promise;
      }
      fail(res);
    });
  }

  /** WAITERS concurrent requests, the first held at the origin until all the others wait. */
  async function herd(path: string): Promise<TestResponse[]> {
    const before = origin.count(path);
    const first = request(`${edge.url}${path}`);
    await reached(() => origin.count(path) === before + 1);
    const rest = Array.from({ length: WAITERS - 1 }, () => request(`${edge.url}${path}`));
    await reached(() => edge.node.edge.collapse.waiters === WAITERS - 1);
    holds.get(path)!();
    const all = await Promise.all([first, ...rest]);
    await edge.node.idle();
    return all;
  }

  before(async () => {
    origin = await startOrigin();
    edge = await startNode({ origin: origin.url, now: clock.now });
  });
  after(async () => {
    for (const release of holds.values()) release();
    await edge.close();
    await origin.close();
  });

  it('answers 50 waiters after at most 3 origin requests when the origin answers 503', async () => {
    const path = longPath('unavailable');
    failing(path, (res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for maintenance');
    });
    const answers = await herd(path);
    assert.equal(answers.length, WAITERS);
    for (const answer of answers)
      assert.ok(answer.status === 503 || answer.status === 502, String(answer.status));
    assert.ok(origin.count(path) <= 3, `${origin.count(path)} origin requests`);
    // A failing origin sets no hit-for-pass marker: the next request still collapses.
    assert.equal(edge.node.edge.collapse.isHitForPass(edge.url + path), false);
  });

  it('answers 50 waiters after at most 3 origin requests when the origin resets the connection', async () => {
    const path = longPath('reset');
    failing(path, (res) => res.socket?.destroy());
    const answers = await herd(path);
    for (const answer of answers) assert.ok(answer.status >= 500, String(answer.status));
    assert.ok(origin.count(path) <= 3, `${origin.count(path)} origin requests`);
  });

  it('answers 50 waiters stale after at most 3 origin requests when stale-if-error allows it', async () => {
    const path = longPath('stale');
    let up = true;
    const { promise, resolve } = Promise.withResolvers<void>();
    holds.set(path, resolve);
    let heldOnce = false;
    origin.route(path.split('?')[0]!, async (_req, res) => {
      if (up) {
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-if-error=600', 'content-length': '5' });
        return void res.end('fresh');
      }
      if (!heldOnce) {
        heldOnce = true;
        await promise;
      }
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('boom');
    });
    assert.equal((await edge.get(path)).text, 'fresh');
    up = false;
    clock.advance(60);
    const before = origin.count(path);
    const answers = await herd(path);
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.text, 'fresh');
      assert.match(String(answer.headers['cache-status']), /detail=stale-if-error/);
    }
    assert.ok(origin.count(path) - before <= 3, `${origin.count(path) - before} origin requests`);
  });
});
