/**
 * A damaged cache never crashes the node: a data file that is not LMDB or is truncated is
 * refused at start with one clear line; a record or chunk damaged in place fails its checksum
 * on read, is removed, and the request becomes a miss that refetches.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { open } from 'lmdb';
import { pino } from 'pino';
import { CacheStore } from '../../src/cache/store.ts';
import { isEdgeError } from '../../src/errors.ts';
import { startNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const SMALL = `/corrupt/small/${'s'.repeat(110)}`;
const LARGE = `/corrupt/large/${'l'.repeat(110)}`;
const smallBody = randomBytes(1024);
/** One Host for every node: the cache key does not change with the port of a restarted node. */
const HOST = { headers: { host: 'corrupt.test' } };
const largeBody = randomBytes(600 * 1024);

/** Runs `strata serve` on a cache directory; resolves with how it ended and what it said. */
function serve(
  cacheDir: string,
  origin: string,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--origin',
      origin,
      '--cache-dir',
      cacheDir,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (/serving on/.test(stderr)) child.kill('SIGTERM');
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('a damaged cache directory', () => {
  let origin: TestOrigin;
  let root: string;

  before(async () => {
    origin = await startOrigin({
      [SMALL]: respond(200, { 'cache-control': 'max-age=600' }, smallBody),
      [LARGE]: respond(200, { 'cache-control': 'max-age=600' }, largeBody),
    });
    root = mkdtempSync(join(tmpdir(), 'strata-corrupt-'));
  });
  after(async () => {
    await origin.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A directory holding both bodies, written by a node that has stopped. */
  async function filledDirectory(name: string): Promise<string> {
    const dir = join(root, name);
    const edge = await startNode({ origin: origin.url, dir, cache: { memoryObjectSize: 64 * 1024 } });
    await edge.get(SMALL, HOST);
    await edge.get(LARGE, HOST);
    await edge.close({ keepDir: true });
    return join(dir, 'cache');
  }

  for (const damage of ['random bytes', 'truncated'] as const) {
    it(`refuses to start on a data file of ${damage}, with one line naming the file`, async () => {
      const cache = await filledDirectory(damage.replace(' ', '-'));
      const file = join(cache, 'data.mdb');
      if (damage === 'random bytes') writeFileSync(file, randomBytes(statSync(file).size));
      else truncateSync(file, Math.floor(statSync(file).size / 3));
      const result = await serve(cache, origin.url);
      assert.equal(result.signal, null, `ended by ${result.signal}, not by a clear refusal`);
      assert.equal(result.code, 1);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(
        lines[0]!,
        /^strata: the cache file .*data\.mdb is damaged \(.+\); move the cache directory aside/,
      );
      assert.throws(
        () =>
          new CacheStore({
            dir: cache,
            maxSize: 1024 ** 3,
            chunkSize: 256 * 1024,
            memorySize: 0,
            memoryObjectSize: 0,
            log: pino({ level: 'silent' }),
            now: Date.now,
          }),
        (error: unknown) => isEdgeError(error) && error.code === 'EDGE_ERR_STORE_CORRUPT',
      );
    });
  }

  // Needs root to run the command as another user (CI runs as root; skipped otherwise).
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  it('says a cache of another user is a permission problem, not damage to remove', {
    skip: !asRoot,
  }, async () => {
    const cache = await filledDirectory('other-user');
    chmodSync(root, 0o777);
    chmodSync(join(root, 'other-user'), 0o777);
    chmodSync(cache, 0o777);
    const result = spawnSync(process.execPath, [CLI, 'cache', 'stats', '--cache-dir', cache], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /must be readable and writable by the node's user \(uid 65534\)/);
    assert.doesNotMatch(result.stderr, /remove it/);
  });

  it('says a data file the node cannot even read is a permission problem too, in the same words', {
    skip: !asRoot,
  }, async () => {
    const cache = await filledDirectory('unreadable');
    chmodSync(root, 0o777);
    chmodSync(join(root, 'unreadable'), 0o777);
    chmodSync(cache, 0o777);
    // Left by a node run as root with a umask of 077: neither file is readable by another user.
    chmodSync(join(cache, 'data.mdb'), 0o600);
    chmodSync(join(cache, 'lock.mdb'), 0o600);
    const result = spawnSync(process.execPath, [CLI, 'cache', 'stats', '--cache-dir', cache], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1, result.stderr);
    // Before: "strata: EACCES: permission denied, open '…/data.mdb'", from the check of the file.
    assert.match(
      result.stderr,
      /^strata: the cache in .*unreadable.* cannot be opened \(EACCES: permission denied, open '.*data\.mdb'\): data\.mdb and lock\.mdb must be readable and writable by the node's user \(uid 65534\)\n$/,
    );
  });

  it('refetches a body whose chunk was overwritten in place, and stays up', async () => {
    const cache = await filledDirectory('chunk');
    const env = open({ path: cache, maxDbs: 16 });
    const chunks = env.openDB<Buffer, [string, number]>({ name: 'chunks', encoding: 'binary' });
    let damaged = 0;
    await chunks.transaction(() => {
      for (const { key, value } of chunks.getRange({})) {
        const bytes = Buffer.from(value);
        bytes[17] = bytes[17]! ^ 0xff;
        chunks.put(key, bytes);
        damaged++;
      }
    });
    await env.close();
    assert.equal(damaged, 4, 'one chunk of the small body, three of the large one');
    const before = origin.count();
    const beforeSmall = origin.count(SMALL);
    const beforeLarge = origin.count(LARGE);

    const edge = await startNode({
      origin: origin.url,
      dir: join(cache, '..'),
      cache: { memoryObjectSize: 64 * 1024 },
    });
    try {
      const small = await edge.get(SMALL, HOST);
      assert.equal(small.status, 200);
      assert.ok(small.body.equals(smallBody), 'the small body is the origin one, not the damaged one');
      assert.doesNotMatch(String(small.headers['cache-status']), /hit/);
      assert.equal(origin.count(SMALL) - beforeSmall, 1);

      // Streamed from LMDB chunk by chunk: the damaged chunk cuts that response short (or closes
      // the connection before its head went out).
      const cut = await edge.get(LARGE, HOST).catch((error: Error) => error);
      if (!(cut instanceof Error)) {
        assert.ok(!cut.complete || cut.body.equals(largeBody), 'never a damaged body presented as complete');
        if (cut.complete) assert.doesNotMatch(String(cut.headers['cache-status']), /hit/);
      }
      const large = await edge.get(LARGE, HOST);
      assert.equal(large.status, 200);
      assert.ok(large.body.equals(largeBody));
      const refetched = origin.count(LARGE) - beforeLarge;
      assert.ok(refetched >= 1 && refetched <= 2, `large refetched ${refetched} times`);

      for (const path of [SMALL, LARGE]) {
        const hit = await edge.get(path, HOST);
        assert.match(String(hit.headers['cache-status']), /^strata; hit/);
        assert.ok(hit.body.equals(path === SMALL ? smallBody : largeBody));
      }
      assert.ok(
        origin.count() - before <= 3,
        `${origin.count() - before} origin requests: ${origin.requests.slice(before).map((r) => r.path.slice(0, 20))}`,
      );
      assert.ok(edge.node.store.corrupt >= 2, `${edge.node.store.corrupt} damaged reads`);
    } finally {
      await edge.close();
    }
  });

  it('refetches an entry whose record was overwritten in place, and stays up', async () => {
    const cache = await filledDirectory('record');
    const env = open({ path: cache, maxDbs: 16 });
    const entries = env.openDB<Buffer, string>({ name: 'entries', encoding: 'binary' });
    let damaged = 0;
    await entries.transaction(() => {
      for (const { key, value } of entries.getRange({})) {
        const bytes = Buffer.from(value);
        if (damaged === 0) bytes.fill(0xc1, 2);
        else bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x55;
        entries.put(key, bytes);
        damaged++;
      }
    });
    await env.close();
    assert.equal(damaged, 2);
    const before = origin.count();

    const edge = await startNode({ origin: origin.url, dir: join(cache, '..') });
    try {
      for (const [path, body] of [
        [SMALL, smallBody],
        [LARGE, largeBody],
      ] as const) {
        const first = await edge.get(path, HOST);
        assert.equal(first.status, 200);
        assert.ok(first.body.equals(body));
        assert.doesNotMatch(String(first.headers['cache-status']), /hit/);
        const again = await edge.get(path, HOST);
        assert.match(String(again.headers['cache-status']), /^strata; hit/);
        assert.ok(again.body.equals(body));
      }
      assert.equal(origin.count() - before, 2);
    } finally {
      await edge.close();
    }
  });
});
