/**
 * Followers of a small body (known length, up to 64 KiB) are answered whole once it has all
 * arrived (src/edge/follower.ts): each with its own request id and Cache-Status, the body
 * framed by its Content-Length, on kept-alive connections and on `Connection: close` ones; a
 * body that arrives short is never delivered as complete.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';
import { until } from '../helpers/wait.ts';

const LONG = `/catalogue/${'autumn-collection/'.repeat(6)}wool-coat.json?colour=grey&size=l&ref=mail`;
const body = Buffer.alloc(6000);
for (let i = 0; i < body.length; i++) body[i] = 32 + (i % 90);

const FOLLOWERS = 120;

describe('followers of a small body answered whole', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  /** Waits until `waiters` followers wait for the leader, then sends the body in two halves. */
  async function inHalves(res: ServerResponse, waiters: number, short = false): Promise<void> {
    await until(() => edge.node.edge.collapse.waiters >= waiters, 10_000);
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length, etag: '"coat"' });
    res.write(body.subarray(0, 2000));
    await sleep(50);
    if (short) return void res.destroy();
    res.end(body.subarray(2000));
  }

  before(async () => {
    origin = await startOrigin({
      [LONG.split('?')[0]!]: (_req, res) => inHalves(res, FOLLOWERS - 1),
      '/close': (_req, res) => inHalves(res, 19),
      '/short': (_req, res) => inHalves(res, 9, true),
    });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers 120 concurrent requests with one origin request, each its own id and Cache-Status', async () => {
    const responses = await Promise.all(
      Array.from({ length: FOLLOWERS }, (_, i) =>
        request(`${edge.url}${LONG}`, { headers: { 'x-request-id': `herd-${i}` } }),
      ),
    );
    assert.equal(origin.count(LONG), 1);
    const statuses = responses.map((r) => String(r.headers['cache-status']));
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; fwd-status=200; stored').length, 1);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; collapsed').length, FOLLOWERS - 1);
    const ids = new Set(responses.map((r) => r.headers['x-request-id']));
    assert.equal(ids.size, FOLLOWERS);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.complete);
      assert.ok(response.body.equals(body));
      assert.equal(response.headers['content-length'], String(body.length));
      assert.equal(response.headers.etag, '"coat"');
      assert.equal(typeof response.headers.date, 'string');
    }
    await edge.node.idle();
    assert.match(String((await edge.get(LONG)).headers['cache-status']), /^strata; hit; ttl=/);
    assert.equal(edge.node.edge.collapse.waiters, 0);
  });

  it('answers followers on Connection: close and HTTP/1.0 connections and closes them', async () => {
    const port = Number(new URL(edge.url).port);
    const host = `Host: 127.0.0.1:${port}`;
    const exchanges = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        rawExchange(
          port,
          i % 2 === 0
            ? `GET /close HTTP/1.1\r\n${host}\r\nConnection: close\r\n\r\n`
            : `GET /close HTTP/1.0\r\n${host}\r\n\r\n`,
          10_000,
        ),
      ),
    );
    assert.equal(origin.count('/close'), 1);
    let collapsed = 0;
    for (const { text, closed } of exchanges) {
      assert.ok(closed);
      const end = text.indexOf('\r\n\r\n');
      const head = text.slice(0, end).toLowerCase();
      assert.match(head, /^http\/1\.1 200 ok\r\n/);
      assert.match(head, /\r\nconnection: close(\r\n|$)/);
      assert.equal(head.match(/\r\ncontent-length: /g)?.length, 1);
      assert.equal(head.match(/\r\nx-request-id: /g)?.length, 1);
      if (head.includes('cache-status: strata; fwd=miss; collapsed')) collapsed++;
      assert.equal(text.slice(end + 4), body.toString('latin1'));
    }
    assert.equal(collapsed, 19);
  });

  it('never gives followers a clean end when the origin body ends before its Content-Length', async () => {
    // The leader's client sees its head and part of the body, cut short; a follower, which had
    // nothing written yet, is answered 502 (http_response_incomplete): no one sees a whole 200.
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(`${edge.url}/short`).then(
          (response) => ({
            status: response.status,
            complete: response.complete,
            bytes: response.body.length,
            proxyStatus: String(response.headers['proxy-status']),
          }),
          () => ({ status: 0, complete: false, bytes: 0, proxyStatus: '' }),
        ),
      ),
    );
    assert.equal(origin.count('/short'), 1);
    for (const outcome of outcomes) {
      if (outcome.status === 502) assert.match(outcome.proxyStatus, /http_response_incomplete/);
      else assert.equal(outcome.complete, false);
      assert.ok(outcome.bytes < body.length);
    }
    assert.ok(outcomes.filter((outcome) => outcome.status === 502).length >= 8, 'the followers');
    await edge.node.idle();
    assert.equal(edge.node.edge.collapse.size, 0);
  });
});
