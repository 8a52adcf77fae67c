/**
 * Read-while-writer across workers: with `--workers 2`, followers in the worker that does not
 * lead read the leader's chunks from LMDB as they are committed — they get their first bytes
 * while the origin is still sending — and a leader whose origin dies mid-body leaves every
 * follower, in both workers, with a response cut short and nothing stored.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type Served, serve, TOKEN } from './workers-support.ts';

const BODY = randomBytes(2 * 1024 * 1024);
const PIECES = 16;
const PIECE = BODY.length / PIECES;
/** 16 pieces 60 ms apart: the origin takes about 1 s to send the body. */
const PIECE_MS = 60;
const CHUNK = 256 * 1024;

interface Timed {
  status: number;
  cacheStatus: string;
  body: Buffer;
  complete: boolean;
  /** Milliseconds from the request to its first body byte, and to its end. */
  firstByteMs: number;
  totalMs: number;
  /** Bytes the origin had sent when this response's first body byte arrived. */
  originSentAtFirstByte: number;
}

/** One GET on its own connection, noting when its first body byte arrives. */
function timedGet(url: string, originSent: () => number): Promise<Timed> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteMs = -1;
      let originSentAtFirstByte = -1;
      let settled = false;
      const finish = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          cacheStatus: String(res.headers['cache-status']),
          body: Buffer.concat(chunks),
          complete,
          firstByteMs,
          totalMs: performance.now() - started,
          originSentAtFirstByte,
        });
      };
      res.on('data', (chunk: Buffer) => {
        if (firstByteMs < 0) {
          firstByteMs = performance.now() - started;
          originSentAtFirstByte = originSent();
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(res.complete));
      res.on('aborted', () => finish(false));
      res.on('error', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('read-while-writer across 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;
  /** Bytes the origin has handed to its socket so far, per path. */
  const sent = new Map<string, number>();
  /** The node's /stats, taken while the origin is halfway through the body. */
  let midway: Promise<{ collapse: { pending: number; waiters: number } }> | undefined;

  const stats = async () => {
    const response = await request(`${node.admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return JSON.parse(response.text) as { collapse: { pending: number; waiters: number } };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-workers-stream-'));
    origin = await startOrigin({
      '/stream': async (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': BODY.length });
        for (let i = 0; i < PIECES; i++) {
          await sleep(PIECE_MS);
          sent.set('/stream', (i + 1) * PIECE);
          res.write(BODY.subarray(i * PIECE, (i + 1) * PIECE));
          if (i === PIECES / 2) midway = stats();
        }
        res.end();
      },
      '/dies': async (_req, res, hit) => {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': BODY.length });
        if (hit > 1) return void res.end(BODY);
        for (let i = 0; i < 4; i++) {
          await sleep(50);
          res.write(BODY.subarray(i * PIECE, (i + 1) * PIECE));
        }
        await sleep(500);
        res.destroy();
      },
    });
    node = await serve(origin.url, dir);
  });
  after(async () => {
    if (node?.child.exitCode === null) node.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams one origin fill to 60 clients over both workers before the origin has finished', async (t) => {
    const n = 60;
    const responses = await Promise.all(
      Array.from({ length: n }, () => timedGet(`${node.url}/stream`, () => sent.get('/stream') ?? 0)),
    );
    assert.equal(origin.count('/stream'), 1);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.complete);
      assert.ok(response.body.equals(BODY), 'every body is byte-identical to the origin’s');
      assert.ok(
        response.originSentAtFirstByte < BODY.length,
        `first bytes at ${response.firstByteMs.toFixed(0)} ms, when the origin had sent ` +
          `${response.originSentAtFirstByte} of ${BODY.length} bytes`,
      );
    }
    const statuses = responses.map((r) => r.cacheStatus);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; fwd-status=200; stored').length, 1);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; collapsed').length, n - 1);
    // Halfway through, the other worker was reading the fill (the one waiter on the node lock).
    const during = await midway!;
    assert.deepEqual(during.collapse, { pending: 1, waiters: 1 }, 'the other worker reads the fill');
    t.diagnostic(
      `first byte median ${median(responses.map((r) => r.firstByteMs)).toFixed(0)} ms, ` +
        `slowest ${Math.max(...responses.map((r) => r.firstByteMs)).toFixed(0)} ms; ` +
        `complete median ${median(responses.map((r) => r.totalMs)).toFixed(0)} ms`,
    );
    const again = await request(`${node.url}/stream`);
    assert.ok(again.body.equals(BODY));
    assert.match(String(again.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/stream'), 1);
  });

  it('cuts every follower short in both workers when the leader’s origin dies mid-body, and stores nothing', async () => {
    const n = 50;
    const responses = await Promise.all(
      Array.from({ length: n }, () => timedGet(`${node.url}/dies`, () => 0)),
    );
    assert.equal(origin.count('/dies'), 1);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.equal(response.complete, false, 'the response is cut short, never a clean end');
      assert.ok(response.body.length >= CHUNK, `${response.body.length} bytes before the cut`);
      assert.ok(response.body.length < BODY.length);
      assert.ok(response.body.equals(BODY.subarray(0, response.body.length)));
    }
    const stats = await request(`${node.admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.deepEqual(JSON.parse(stats.text).collapse, { pending: 0, waiters: 0 });
    const next = await request(`${node.url}/dies`);
    assert.equal(origin.count('/dies'), 2, 'nothing was stored');
    assert.equal(next.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
    assert.ok(next.complete);
    assert.ok(next.body.equals(BODY));
  });
});
