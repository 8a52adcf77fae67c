/**
 * The access log as an operator reads it: a file (JSON or combined) written within the flush
 * interval of a single request, every field the issue asks for, request ids end to end,
 * reopening after logrotate, errors logged once, and the same with 2 workers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createLogger } from '../../src/observability/logger.ts';
import { createFixtures } from '../helpers/certs.ts';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type Served, serve } from './workers-support.ts';

const LONG = `/catalogue/${'autumn-winter-collection-'.repeat(5)}coat.html?colour=dark-green&size=xl&ref=newsletter`;
const UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';
const REFERER = 'https://shop.example/catalogue/autumn?utm_source=newsletter&utm_medium=email';

/** The complete lines of the log (a line a process is still appending is not one yet). */
function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const complete = readFileSync(file, 'utf8').split('\n');
  complete.pop(); // after the last newline: '' or a line being written
  return complete.filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the access log written to a file', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let dir: string;
  let file: string;
  const clock = createClock();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-access-'));
    file = join(dir, 'logs', 'access.log');
    origin = await startOrigin({
      [LONG.split('?')[0]!]: respond(200, { 'cache-control': 'max-age=600' }, Buffer.alloc(4000, 'c')),
      '/form': respond(201, { 'cache-control': 'no-store' }, 'created'),
    });
    edge = await startNode({
      origin: origin.url,
      now: clock.now,
      config: {
        logging: { level: 'silent', access: true, accessFile: file, flushInterval: '1s' },
        proxy: { trustedProxies: ['127.0.0.1'] },
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes a single request's line within the flush interval (no 4 KiB buffer holding it back)", async () => {
    const started = performance.now();
    const res = await edge.get(LONG, { headers: { 'user-agent': UA, referer: REFERER } });
    assert.equal(res.status, 200);
    assert.ok(await until(() => lines(file).length === 1, 2500), 'no line within 2.5 s');
    const waited = performance.now() - started;
    assert.ok(waited < 2000, `the line took ${Math.round(waited)} ms`);
    const line = lines(file)[0]!;
    assert.equal(line.msg, 'request completed');
    assert.equal(line.path, LONG);
    assert.equal(line.cache, 'miss');
    assert.equal(line.site, 'default');
    assert.equal(line.protocol, 'HTTP/1.1');
    assert.equal(line.tls, false);
    assert.equal(line.ua, UA);
    assert.equal(line.referer, REFERER);
    assert.equal(line.bytes, 4000);
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The id made here is the one the origin saw and the client got back.
    assert.equal(line.id, res.headers['x-request-id']);
    assert.equal(origin.requests.at(-1)!.headers['x-request-id'], line.id);
  });

  it('names the client behind a trusted proxy, its Range, and the Age and TTL of a hit', async () => {
    clock.advance(100);
    const res = await edge.get(LONG, {
      headers: {
        'x-forwarded-for': '198.51.100.23, 127.0.0.1',
        'x-request-id': 'lb-7f3a9c2e-0001',
        range: 'bytes=0-99',
      },
    });
    assert.equal(res.status, 206);
    assert.equal(res.headers['x-request-id'], 'lb-7f3a9c2e-0001');
    assert.equal(origin.count(LONG), 1);
    assert.ok(await until(() => lines(file).length === 2, 2500));
    const line = lines(file)[1]!;
    assert.equal(line.client, '198.51.100.23');
    assert.equal(line.peer, '127.0.0.1');
    assert.equal(line.id, 'lb-7f3a9c2e-0001');
    assert.equal(line.cache, 'hit');
    assert.equal(line.status, 206);
    assert.equal(line.range, 'bytes=0-99');
    assert.equal(line.bytes, 100);
    assert.equal(line.age, 100);
    assert.equal(line.ttl, 500);
  });

  it('records the bytes of a request body', async () => {
    const body = 'name=Ada&message='.padEnd(1500, 'x');
    const res = await edge.get('/form', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 201);
    assert.ok(await until(() => lines(file).length === 3, 2500));
    const line = lines(file)[2]!;
    assert.equal(line.method, 'POST');
    assert.equal(line.requestBytes, 1500);
    assert.equal(line.cache, 'pass');
  });

  it('goes on in a new file once reopened after a rotation (SIGUSR1)', async () => {
    renameSync(file, `${file}.1`);
    edge.node.reopenLogs();
    await edge.get(LONG);
    assert.ok(await until(() => lines(file).length === 1, 2500), 'no line in the reopened file');
    assert.equal(lines(`${file}.1`).length, 3);
    assert.equal(lines(file)[0]!.cache, 'hit');
  });
});

describe('request ids from untrusted clients', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const seen: Array<Record<string, unknown>> = [];

  before(async () => {
    origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=60' }, 'page') });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) seen.push(JSON.parse(line));
        done();
      },
    });
    edge = await startNode({ origin: origin.url, logger: pino({ level: 'info' }, sink) });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('replaces an id a client sent itself, and never returns an id an origin stored', async () => {
    const first = await edge.get('/page', { headers: { 'x-request-id': 'forged-by-client' } });
    const second = await edge.get('/page');
    const ids = [first.headers['x-request-id'], second.headers['x-request-id']];
    assert.ok(
      ids.every((id) => typeof id === 'string' && /^[\w-]+-[0-9a-z]+$/.test(id)),
      String(ids),
    );
    assert.notEqual(ids[0], 'forged-by-client');
    assert.notEqual(ids[0], ids[1]);
    assert.equal(origin.requests[0]!.headers['x-request-id'], ids[0]);
    assert.equal(origin.count('/page'), 1);
    const logged = seen.filter((line) => line.msg === 'request completed').map((line) => line.id);
    assert.deepEqual(logged, ids);
  });
});

describe('the combined format', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let dir: string;
  let file: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-combined-'));
    file = join(dir, 'access.log');
    origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=60' }, 'a page') });
    edge = await startNode({
      origin: origin.url,
      config: { logging: { level: 'silent', accessFile: file, accessFormat: 'combined', flushInterval: 50 } },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes Apache/nginx combined lines, quotes escaped', async () => {
    await edge.get(`${LONG}&q=%22x%22`, { headers: { 'user-agent': 'curl/8.5 "quoted"', referer: REFERER } });
    await edge.get('/page', { method: 'HEAD' });
    const read = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.ok(await until(() => existsSync(file) && read().length === 2, 2000));
    const [first, second] = read();
    const pattern =
      /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET (\S+) HTTP\/1\.1" 404 (\d+|-) "([^"]*)" "([^"]*)"$/;
    const match = pattern.exec(first!);
    assert.ok(match, first);
    assert.equal(match[1], `${LONG}&q=%22x%22`);
    assert.equal(match[3], REFERER);
    assert.equal(match[4], 'curl/8.5 \\x22quoted\\x22');
    assert.match(second!, /"HEAD \/page HTTP\/1\.1" 200 - "-" "-"$/);
  });
});

describe('errors', () => {
  let edge: TestNode;
  const seen: Array<Record<string, unknown>> = [];

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) seen.push(JSON.parse(line));
        done();
      },
    });
    // An origin nobody listens on: a port taken from a server that is closed again.
    const gone = await startOrigin();
    await gone.close();
    edge = await startNode({ origin: gone.url, logger: pino({ level: 'info' }, sink) });
  });
  after(() => edge.close());

  it('logs a failed origin request once, with what the network said, and tells the client none of it', async () => {
    const res = await edge.get(LONG);
    assert.equal(res.status, 502);
    assert.doesNotMatch(res.text, /127\.0\.0\.1|ECONNREFUSED/);
    const about = seen.filter((line) => JSON.stringify(line).includes('ECONNREFUSED'));
    assert.equal(about.length, 1, JSON.stringify(seen));
    assert.equal(about[0]!.msg, 'request completed');
    assert.equal(about[0]!.err, 'EDGE_ERR_ORIGIN_CONNECT');
    assert.equal(about[0]!.id, res.headers['x-request-id']);
  });
});

describe('the root logger', () => {
  it('writes a lone line within its flush interval', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-logger-'));
    try {
      const file = join(dir, 'node.log');
      const { openSync } = await import('node:fs');
      const fd = openSync(file, 'a');
      const log = createLogger({ level: 'info', destination: fd, flushInterval: 100 });
      log.info({ port: 8080 }, 'listening');
      assert.ok(await until(() => readFileSync(file, 'utf8').includes('"listening"'), 1500));
      // The destination keeps the descriptor (closed with the process).
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the access log with 2 workers', () => {
  let origin: TestOrigin;
  let node: Served;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-access-workers-'));
    origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=600' }, 'page') });
    const config = join(dir, 'strata.json');
    writeFileSync(
      config,
      JSON.stringify({
        origins: [{ name: 'main', url: origin.url }],
        sites: [{ name: 'shop', hosts: ['*'], origins: ['main'] }],
        logging: { accessFile: join(dir, 'access.log') },
      }),
    );
    node = await serve(origin.url, dir, config);
  });
  after(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every worker appends to the file and reopens it on SIGUSR1 to the primary', async () => {
    const file = join(dir, 'access.log');
    for (let i = 0; i < 4; i++) assert.equal((await request(`${node.url}/page`)).status, 200);
    assert.ok(await until(() => lines(file).length === 4, 3000), `lines: ${lines(file).length}`);
    assert.deepEqual(new Set(lines(file).map((line) => line.site)), new Set(['shop']));
    renameSync(file, `${file}.1`);
    node.child.kill('SIGUSR1');
    // Each worker reopens when the signal reaches it; lines go on to the new file from then on.
    assert.ok(
      await until(async () => {
        await request(`${node.url}/page`);
        return lines(file).length >= 2 && new Set(lines(file).map((line) => line.pid)).size === 2;
      }, 10_000),
      'both workers write to the reopened file',
    );
    assert.equal(lines(`${file}.1`).length >= 4, true);
  });
});

describe('the access log over TLS and HTTP/2', () => {
  it('names the protocol and TLS of each request', async () => {
    const fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['shop.test']);
    const origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=60' }, 'page') });
    const seen: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) seen.push(JSON.parse(line));
        done();
      },
    });
    const edge = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sink),
      config: { listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }] },
    });
    try {
      const id = await new Promise<string>((resolve, reject) => {
        const session = h2connect(`https://${edge.node.addresses[0]}`, {
          ca: fixtures.ca,
          servername: 'shop.test',
        });
        session.on('error', reject);
        const stream = session.request({ ':path': '/page', ':authority': 'shop.test', 'user-agent': UA });
        stream.on('response', (headers) => {
          stream.resume();
          stream.on('end', () => {
            session.close();
            resolve(String(headers['x-request-id']));
          });
        });
        stream.on('error', reject);
        stream.end();
      });
      await edge.node.idle();
      const line = seen.find((l) => l.msg === 'request completed')!;
      assert.equal(line.protocol, 'HTTP/2');
      assert.equal(line.tls, true);
      assert.equal(line.id, id);
      assert.equal(line.ua, UA);
      assert.equal(line.host, 'shop.test');
    } finally {
      await edge.close();
      await origin.close();
      fixtures.remove();
    }
  });
});

describe('strata serve on standard output', () => {
  it("prints a single request's line within a second, not after 4 KiB of lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-stdout-'));
    const origin = await startOrigin({ '/page': respond(200, { 'cache-control': 'max-age=60' }, 'page') });
    const cli = new URL('../../cli/strata.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        cli,
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--origin',
        origin.url,
        '--cache-dir',
        join(dir, 'cache'),
        '--admin-listen',
        '127.0.0.1:0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString();
    });
    child.stderr.on('data', (data: Buffer) => {
      err += data.toString();
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      assert.ok(await until(() => /serving on http:\/\/[\d.]+:\d+/.test(err), 20_000), err);
      const url = /serving on (http:\/\/[\d.]+:\d+)/.exec(err)![1]!;
      const started = performance.now();
      assert.equal((await request(`${url}/page`)).status, 200);
      assert.ok(await until(() => out.includes('"request completed"'), 2500), `stdout: ${out}`);
      assert.ok(performance.now() - started < 2000);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await origin.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
