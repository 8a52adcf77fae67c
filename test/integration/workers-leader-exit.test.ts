/**
 * The worker leading a node-wide fill dies (kill -9) while followers in the other worker read
 * it. Followers that have not been sent a response head yet ask again: one of them leads a new
 * origin request, the rest follow it, and their clients get the whole body (before, they were
 * answered 502). Followers already sent the head and part of the body are cut short, a
 * truncation the client sees (an HTTP/2 stream reset), and nothing partial is stored. Requests
 * waiting for a leader that had no response yet compete again, as before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { request } from '../helpers/http.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { connectionOwner, type Served, serve, TOKEN, until, workerPids } from './workers-support.ts';

const auth = { authorization: `Bearer ${TOKEN}` };
const BODY = randomBytes(1024 * 1024);
const CHUNK = 256 * 1024;
/** Clients at once, each on a connection of its own (the primary deals them to both workers). */
const CLIENTS = 24;
const asset = (name: string) =>
  `/assets/catalogue/spring-2026/${'collection-'.repeat(6)}hero-video/${name}.bin`;
/** Over HTTP/1.1 and over HTTP/2: the origin stalls after its head, or after a chunk of the body. */
const STALLED = asset(`poster-${'7'.repeat(24)}`);
const CUT = asset(`trailer-${'3'.repeat(24)}`);
const STALLED_H2 = asset(`poster-h2-${'5'.repeat(24)}`);
/** The origin sends nothing at all to the first request: the fill is never announced. */
const SILENT = asset(`thumbnail-${'1'.repeat(24)}`);
const CUT_H2 = asset(`trailer-h2-${'9'.repeat(24)}`);
/** What the origin sends of a CUT body before it stalls: more than a chunk. */
const CUT_AT = CHUNK + 44 * 1024;
const HEADERS = {
  'cache-control': 'public, max-age=600',
  'content-type': 'application/octet-stream',
  'content-length': String(BODY.length),
  etag: `"${'e'.repeat(40)}"`,
  'last-modified': 'Wed, 01 Apr 2026 08:00:00 GMT',
};

interface Outcome {
  status: number;
  cacheStatus: string;
  body: Buffer;
  complete: boolean;
  /** The connection failed before any response head. */
  error: string | undefined;
  /** HTTP/2: the code the stream was closed with (0: ended normally), and whether its connection was still up. */
  rstCode?: number;
  connectionUp?: boolean;
}

interface Client {
  /** The client's port, once connected. */
  port: Promise<number>;
  done: Promise<Outcome>;
  received: () => number;
}

/** One GET on a connection of its own, given up after 20 s. */
function get(url: string): Client {
  let port!: (port: number) => void;
  const connected = new Promise<number>((resolve) => {
    port = resolve;
  });
  let bytes = 0;
  const done = new Promise<Outcome>((resolve) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (complete: boolean) => {
        if (settled) return;
        settled = true;
        const body = Buffer.concat(chunks);
        const cacheStatus = String(res.headers['cache-status']);
        resolve({ status: res.statusCode ?? 0, cacheStatus, body, complete, error: undefined });
      };
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        chunks.push(chunk);
      });
      res.on('end', () => finish(res.complete));
      res.on('aborted', () => finish(false));
      res.on('error', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')));
    req.on('socket', (socket) => socket.once('connect', () => port(socket.localPort!)));
    req.on('error', (error) =>
      resolve({ status: 0, cacheStatus: '', body: Buffer.alloc(0), complete: false, error: error.message }),
    );
    req.end();
  });
  return { port: connected, done, received: () => bytes };
}

/** One HTTP/2 GET on a session (a connection) of its own, given up after 20 s. */
function get2(url: string, ca: string, path: string): Client {
  let port!: (port: number) => void;
  const connected = new Promise<number>((resolve) => {
    port = resolve;
  });
  let bytes = 0;
  const done = new Promise<Outcome>((resolve) => {
    const session = connectH2(url, { ca, servername: 'edge.test' });
    session.once('connect', () => port(session.socket.localPort!));
    session.on('error', () => {});
    const stream = session.request({ ':path': path });
    const chunks: Buffer[] = [];
    let status = 0;
    let cacheStatus = '';
    let ended = false;
    const timer = setTimeout(() => stream.close(), 20_000);
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
      cacheStatus = String(headers['cache-status']);
    });
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      chunks.push(chunk);
    });
    stream.on('end', () => {
      ended = true;
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      const rstCode = stream.rstCode ?? 0;
      const body = Buffer.concat(chunks);
      const complete = ended && rstCode === 0;
      const error = status === 0 ? `stream closed (${rstCode}) before a response` : undefined;
      const connectionUp = !session.closed && !session.destroyed;
      resolve({ status, cacheStatus, body, complete, error, rstCode, connectionUp });
      session.close();
    });
  });
  return { port: connected, done, received: () => bytes };
}

describe('followers in one worker when the worker leading their fill dies', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;
  let fixtures: Fixtures;
  /** The origin's first answer to each path: held open (head sent, body stalled). */
  const stalled: ServerResponse[] = [];
  /** Each origin request's remote port (the worker's end), in arrival order, by path. */
  const originPorts = new Map<string, number[]>();

  const note = (path: string, port: number | undefined) =>
    originPorts.set(path, [...(originPorts.get(path) ?? []), port ?? 0]);
  const collapsedTotal = async () => {
    const metrics = await request(`${node.admin}/metrics`, { headers: auth });
    return Number(/^strata_collapsed_waiters_total (\d+)$/m.exec(metrics.text)?.[1] ?? -1);
  };
  const lockStats = async () =>
    JSON.parse((await request(`${node.admin}/stats`, { headers: auth })).text).collapse as {
      pending: number;
      waiters: number;
    };
  const h1 = (path: string) => get(`${node.url}${path}`);
  const h2 = (path: string) => get2(node.tls!, fixtures.ca, path);

  /**
   * Sends CLIENTS requests for `path` (`open`: over HTTP/1.1 or HTTP/2), waits until one reached
   * the origin and all the others follow it (and `ready` holds), then kills the worker whose
   * origin request it is. Returns the outcomes, each with the worker its connection was in, and
   * the killed worker.
   */
  async function killLeaderOf(
    path: string,
    open: (path: string) => Client,
    ready: (clients: Client[]) => boolean,
    waiting = false,
  ) {
    const pids = workerPids(node.child.pid!);
    assert.equal(pids.length, 2);
    const before = await collapsedTotal();
    const nodePort = Number(new URL(open === h1 ? node.url : node.tls!).port);
    const clients = Array.from({ length: CLIENTS }, () => open(path));
    const ports = await Promise.all(clients.map((client) => client.port));
    // Followers count once they join a fill; with none announced (`waiting`), the other worker's
    // request waiting for the node-wide lock is what shows.
    const inPlace = await until(
      async () =>
        origin.count(path) === 1 &&
        (waiting ? (await lockStats()).waiters === 1 : (await collapsedTotal()) === before + CLIENTS - 1) &&
        ready(clients),
      10_000,
    );
    assert.ok(
      inPlace,
      `one origin request, ${CLIENTS - 1} followers (${await collapsedTotal()} - ${before})`,
    );
    const owners = ports.map((port) => connectionOwner(pids, nodePort, port));
    const leader = connectionOwner(pids, originPorts.get(path)![0]!, origin.port);
    assert.ok(leader !== undefined, 'the worker leading the fill is known');
    assert.ok(
      owners.every((owner) => owner !== undefined),
      'every connection is in a worker',
    );
    process.kill(leader, 'SIGKILL');
    const outcomes = await Promise.all(clients.map((client) => client.done));
    const replaced = await until(() => {
      const now = workerPids(node.child.pid!);
      return now.length === 2 && !now.includes(leader);
    }, 10_000);
    assert.ok(replaced, 'the killed worker was replaced');
    return { outcomes: outcomes.map((outcome, i) => ({ ...outcome, worker: owners[i]! })), leader };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-workers-leader-exit-'));
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    /** The first request gets `sent` bytes of the body, then nothing; later ones all of it. */
    const stallAfter =
      (path: string, sent: number) => (req: IncomingMessage, res: ServerResponse, hit: number) => {
        note(path, req.socket.remotePort);
        res.writeHead(200, HEADERS);
        if (hit > 1) return void res.end(BODY);
        // With none of the body, the fill is announced and no chunk committed; with more than
        // a chunk, every follower has been sent the head and a chunk of the body.
        if (sent === 0) res.flushHeaders();
        else res.write(BODY.subarray(0, sent));
        stalled.push(res);
      };
    origin = await startOrigin({
      [STALLED]: stallAfter(STALLED, 0),
      [CUT]: stallAfter(CUT, CUT_AT),
      [STALLED_H2]: stallAfter(STALLED_H2, 0),
      [SILENT]: (req, res, hit) => {
        note(SILENT, req.socket.remotePort);
        if (hit > 1) return void res.writeHead(200, HEADERS).end(BODY);
        stalled.push(res);
      },
      [CUT_H2]: stallAfter(CUT_H2, CUT_AT),
    });
    node = await serve(origin.url, dir, [
      '--listen-tls',
      '127.0.0.1:0',
      '--tls-cert',
      leaf.cert,
      '--tls-key',
      leaf.key,
    ]);
  });
  after(async () => {
    for (const res of stalled) res.destroy();
    if (node?.child.exitCode === null) node.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
    fixtures.remove();
  });

  it('gives followers not yet answered the whole body from one new origin request', async () => {
    await survivorsAnswered(STALLED, h1);
  });

  it('cuts short followers already sent part of the body, and stores nothing', async () => {
    await partSentCut(CUT, h1);
  });

  it('does the same over HTTP/2: the whole body for followers not yet answered', async () => {
    await survivorsAnswered(STALLED_H2, h2);
  });

  it('resets the HTTP/2 streams of followers already sent part of the body (RST_STREAM)', async () => {
    const outcomes = await partSentCut(CUT_H2, h2);
    // NGHTTP2_INTERNAL_ERROR: the stream reset on a connection that stays up.
    for (const outcome of outcomes.survivors) {
      assert.equal(outcome.rstCode, 2, 'the stream is reset, not ended');
      assert.ok(outcome.connectionUp, 'the stream alone, not its connection');
    }
  });

  it('has waiters for a leader that had no response yet compete again: one new origin request', async () => {
    const { outcomes, leader } = await killLeaderOf(SILENT, h1, () => true, true);
    const survivors = outcomes.filter((outcome) => outcome.worker !== leader);
    assert.ok(survivors.length >= 2, `${survivors.length} clients in the surviving worker`);
    for (const outcome of survivors) {
      assert.equal(outcome.status, 200, `answered ${outcome.status}: ${outcome.body.subarray(0, 80)}`);
      assert.ok(outcome.complete && outcome.body.equals(BODY), 'the whole body, byte for byte');
    }
    const statuses = survivors.map((outcome) => outcome.cacheStatus);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; fwd-status=200; stored').length, 1);
    assert.equal(origin.count(SILENT), 2, 'one new origin request, not one per waiter');
  });

  async function survivorsAnswered(path: string, open: (path: string) => Client): Promise<void> {
    const { outcomes, leader } = await killLeaderOf(path, open, () => true);
    const survivors = outcomes.filter((outcome) => outcome.worker !== leader);
    const lost = outcomes.filter((outcome) => outcome.worker === leader);
    assert.ok(survivors.length >= 2, `${survivors.length} clients in the surviving worker`);
    for (const outcome of lost)
      assert.ok(outcome.error !== undefined, 'the killed worker’s connections drop');
    for (const outcome of survivors) {
      assert.equal(outcome.error, undefined);
      assert.equal(outcome.status, 200, `answered ${outcome.status}: ${outcome.body.subarray(0, 80)}`);
      assert.ok(outcome.complete);
      assert.ok(outcome.body.equals(BODY), 'the whole body, byte for byte');
    }
    const statuses = survivors.map((outcome) => outcome.cacheStatus);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; fwd-status=200; stored').length, 1);
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; collapsed').length, survivors.length - 1);
    assert.equal(origin.count(path), 2, 'one new origin request, not one per follower');
    assert.ok(await until(async () => (await lockStats()).pending === 0, 5000), 'no node-wide lock left');
    assert.deepEqual(await lockStats(), { pending: 0, waiters: 0 });
    // Over the same protocol: the scheme is part of the key.
    const hit = await open(path).done;
    assert.match(hit.cacheStatus, /^strata; hit/);
    assert.ok(hit.body.equals(BODY));
    assert.equal(origin.count(path), 2);
  }

  async function partSentCut(path: string, open: (path: string) => Client) {
    const { outcomes, leader } = await killLeaderOf(path, open, (clients) =>
      clients.every((client) => client.received() >= CHUNK),
    );
    const survivors = outcomes.filter((outcome) => outcome.worker !== leader);
    assert.ok(survivors.length >= 1, `${survivors.length} clients in the surviving worker`);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 200);
      assert.equal(outcome.complete, false, 'a truncation the client sees, never a clean end');
      assert.ok(outcome.body.length >= CHUNK && outcome.body.length < BODY.length);
      assert.ok(outcome.body.equals(BODY.subarray(0, outcome.body.length)));
    }
    assert.ok(await until(async () => (await lockStats()).pending === 0, 5000), 'no node-wide lock left');
    const next = await open(path).done;
    assert.equal(origin.count(path), 2, 'nothing partial was stored');
    assert.equal(next.cacheStatus, 'strata; fwd=miss; fwd-status=200; stored');
    assert.ok(next.complete);
    assert.ok(next.body.equals(BODY));
    return { survivors };
  }
});
