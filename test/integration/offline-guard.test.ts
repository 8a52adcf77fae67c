/**
 * Offline tools keep off a running node's cache directory: `strata serve` records itself in
 * strata.pid, `strata purge --cache-dir` and `strata cache … --cache-dir` and `strata cache compact`
 * refuse while that node lives, and a record a crash left behind (a dead pid, or a pid now used
 * by another program) does not hold the directory. `strata cache compact` shrinks the data file
 * and the node serves what it kept afterwards.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { open } from 'lmdb';
import { request } from '../helpers/http.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const OFFLINE = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'admin', 'offline.ts')).href;
const dir = mkdtempSync(join(tmpdir(), 'strata-offline-guard-'));
const env = { ...process.env };
delete env.STRATA_ADMIN_TOKEN;
delete env.STRATA_CONFIG;

function strata(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000, env }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

/** Starts `strata serve` and resolves with its client URL once it says it serves. */
function serve(cacheDir: string, origin: string): Promise<{ child: ChildProcess; url: string }> {
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
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no banner in time: ${stderr}`)), 20_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving on (http:\/\/[\d.:]+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const BODY = 'x'.repeat(64 * 1024);

/**
 * Runs a module in a child process: an offline strata tool stopped at a chosen point (its
 * command line names strata, as the CLI's does, so the directory's record counts it alive).
 * Resolves with the child and a reader of its next stdout line.
 */
function tool(source: string): { child: ChildProcess; line: () => Promise<string> } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `// strata tool\n${source}`], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env,
  });
  let buffered = '';
  const waiting: Array<(line: string) => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let at = buffered.indexOf('\n'); at >= 0 && waiting.length > 0; at = buffered.indexOf('\n')) {
      waiting.shift()!(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
    }
  });
  return { child, line: () => new Promise((resolve) => waiting.push(resolve)) };
}

describe('offline tools and a running node', () => {
  // A real origin on loopback answering every path with the same cacheable body.
  let server: Server;
  const origin = { url: '', requests: 0 };
  before(async () => {
    server = createServer((_req, res) => {
      origin.requests++;
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
      res.end(BODY);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses purge, cache stats and compact on a served directory; works once the node stopped', async () => {
    const cacheDir = join(dir, 'served');
    const { child, url } = await serve(cacheDir, origin.url);
    const path = `/catalogue/autumn-collection/${'long-segment-'.repeat(6)}item-0042?colour=midnight-blue&size=m`;
    try {
      const first = await request(`${url}${path}`);
      assert.equal(first.status, 200);
      const claim = JSON.parse(readFileSync(join(cacheDir, 'strata.pid'), 'utf8')) as { pid: number };
      assert.equal(claim.pid, child.pid);
      for (const args of [
        ['purge', '--url', `${url}${path}`, '--cache-dir', cacheDir],
        ['cache', 'stats', '--cache-dir', cacheDir],
        ['cache', 'compact', '--cache-dir', cacheDir],
      ]) {
        const refused = await strata(...args);
        assert.equal(refused.code, 1, args.join(' '));
        assert.match(
          refused.stderr,
          new RegExp(
            `^strata: cache\\.dir ${cacheDir}: a running node \\(pid ${child.pid}, started [^)]+\\) serves it; stop it first`,
          ),
        );
      }
      // A second node on the same directory is refused the same way, before it binds a port.
      const second = await strata(
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        '127.0.0.1:0',
        '--origin',
        origin.url,
        '--cache-dir',
        cacheDir,
      );
      assert.equal(second.code, 1);
      assert.match(
        second.stderr,
        new RegExp(`^strata: cache\\.dir ${cacheDir}: a running node \\(pid ${child.pid}, `),
      );
      // The node itself goes on serving from the directory the tools left alone.
      assert.match(String((await request(`${url}${path}`)).headers['cache-status']), /^strata; hit/);
    } finally {
      await stop(child);
    }
    assert.equal(existsSync(join(cacheDir, 'strata.pid')), false, 'a clean stop removes the record');
    const purged = await strata('purge', '--url', `${url}${path}`, '--cache-dir', cacheDir, '--json');
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(JSON.parse(purged.stdout).purged, 1);
  });

  it('refuses to start a node while an offline purge or a compaction works on the directory, so nothing the node acknowledged is lost to it', async () => {
    const cacheDir = join(dir, 'tool-held');
    const first = await serve(cacheDir, origin.url);
    const path = `/catalogue/winter-2026/${'long-segment-'.repeat(8)}item-0007?colour=slate`;
    const host = { headers: { host: 'held.test' } };
    try {
      assert.equal((await request(`${first.url}${path}`, host)).status, 200);
    } finally {
      await stop(first.child);
    }
    // An offline purge holds the directory while it is open: a node started meanwhile would
    // write beside it (before: it started, and served and purged on the same file).
    const purging = tool(`
      import { openCacheDirectory } from ${JSON.stringify(OFFLINE)};
      const cache = openCacheDirectory({ dir: ${JSON.stringify(cacheDir)}, tool: 'strata purge --cache-dir' });
      process.stdout.write('open\\n');
      process.stdin.resume();
      process.stdin.on('end', async () => { await cache.close(); process.stdout.write('closed\\n'); });
    `);
    try {
      assert.equal(await purging.line(), 'open');
      const args = ['serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
      const refused = await strata(...args, '--origin', origin.url, '--cache-dir', cacheDir);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        new RegExp(
          `^strata: cache\\.dir ${cacheDir}: \`strata purge --cache-dir\` \\(pid ${purging.child.pid}, started [^)]+\\) is working on it; wait for it to finish\n$`,
        ),
      );
      purging.child.stdin!.end();
      assert.equal(await purging.line(), 'closed');
    } finally {
      purging.child.kill('SIGKILL');
    }
    assert.equal(existsSync(join(cacheDir, 'strata.pid')), false, 'the tool removes its record');
    // A compaction holds it from before it opens the store until its copy replaced data.mdb
    // (before: a node started during it ran on the old file, and the rename threw away the
    // purges it had acknowledged and everything it stored).
    const compacting = tool(`
      import { existsSync, readFileSync } from 'node:fs';
      import { compactCacheDirectory } from ${JSON.stringify(OFFLINE)};
      const pid = ${JSON.stringify(join(cacheDir, 'strata.pid'))};
      const done = compactCacheDirectory(${JSON.stringify(cacheDir)});
      process.stdout.write(readFileSync(pid, 'utf8'));
      await done;
      process.stdout.write(String(existsSync(pid)) + '\\n');
    `);
    const claim = JSON.parse(await compacting.line()) as { pid: number; tool?: string };
    assert.equal(claim.pid, compacting.child.pid);
    assert.equal(claim.tool, 'strata cache compact');
    assert.equal(await compacting.line(), 'false', 'the record goes once the copy is in place');
    // The node starts on the compacted directory and serves what it held.
    const second = await serve(cacheDir, origin.url);
    try {
      const asked = origin.requests;
      const hit = await request(`${second.url}${path}`, host);
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(hit.text, BODY);
      assert.equal(origin.requests, asked);
    } finally {
      await stop(second.child);
    }
  });

  it('removes the partial copy a killed compaction left in the directory, at the next compaction or node start', async () => {
    const cacheDir = join(dir, 'compact-killed');
    const first = await serve(cacheDir, origin.url);
    await stop(first.child);
    // What `strata cache compact` killed midway leaves: its copy, as large as it got (before:
    // kept for ever, hidden, and a new one beside it at each killed run).
    const leftover = () => {
      const copy = join(cacheDir, '.compact-4194304');
      mkdirSync(copy);
      writeFileSync(join(copy, 'data.mdb'), Buffer.alloc(4 * 1024 * 1024, 1));
      writeFileSync(join(copy, 'lock.mdb'), Buffer.alloc(8272));
      return copy;
    };
    const killed = leftover();
    const compacted = await strata('cache', 'compact', '--cache-dir', cacheDir, '--json');
    assert.equal(compacted.code, 0, compacted.stderr);
    assert.equal(existsSync(killed), false, 'the next compaction removes it');
    const again = leftover();
    const second = await serve(cacheDir, origin.url);
    try {
      assert.equal(existsSync(again), false, 'a node starting removes it');
    } finally {
      await stop(second.child);
    }
  });

  it('lets exactly one of two processes claiming the directory at the same instant hold it', async () => {
    // Two racers (one per core) wait for one start signal, spinning, then claim: they start within
    // microseconds of each other, as two nodes started together by two supervisors would.
    const race = mkdtempSync(join(tmpdir(), 'strata-claim-race-'));
    const racer = join(race, 'strata-claim-racer.ts');
    const go = join(race, 'go');
    const CACHE_DIR = pathToFileURL(
      join(import.meta.dirname, '..', '..', 'src', 'cache', 'cache-dir.ts'),
    ).href;
    writeFileSync(
      racer,
      [
        "import { existsSync } from 'node:fs';",
        `import { claimCacheDir } from '${CACHE_DIR}';`,
        'const [dir, go] = process.argv.slice(2);',
        'const until = Date.now() + 20_000;',
        'while (!existsSync(go) && Date.now() < until);',
        'try { claimCacheDir(dir); console.log("held"); } catch { console.log("refused"); }',
        'setTimeout(() => {}, 400);', // alive while the other looks at its claim
      ].join('\n'),
    );
    try {
      for (let round = 0; round < 8; round++) {
        const target = join(race, `cache-${round}`);
        mkdirSync(target);
        // A claim a crash left: both racers find it stale and must break it.
        if (round % 2 === 1)
          writeFileSync(join(target, 'strata.pid'), JSON.stringify({ pid: 999_999_999, host: hostname() }));
        rmSync(go, { force: true });
        const runs = [1, 2].map(
          () =>
            new Promise<string>((resolve) =>
              execFile(process.execPath, [racer, target, go], { timeout: 30_000 }, (_e, stdout) =>
                resolve(stdout.trim()),
              ),
            ),
        );
        await new Promise((resolve) => setTimeout(resolve, 600)); // both spinning
        writeFileSync(go, '');
        const said = await Promise.all(runs);
        assert.equal(said.filter((line) => line === 'held').length, 1, `round ${round}: ${said.join(', ')}`);
        assert.equal(
          said.filter((line) => line === 'refused').length,
          1,
          `round ${round}: ${said.join(', ')}`,
        );
      }
    } finally {
      rmSync(race, { recursive: true, force: true });
    }
  });

  it('does not count a record left by a crash: a dead pid, or a pid now running another program', async () => {
    const cacheDir = join(dir, 'crashed');
    const { child } = await serve(cacheDir, origin.url);
    child.removeAllListeners('exit');
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    assert.ok(existsSync(join(cacheDir, 'strata.pid')), 'SIGKILL leaves the record');
    const afterCrash = await strata('cache', 'stats', '--cache-dir', cacheDir, '--json');
    assert.equal(afterCrash.code, 0, afterCrash.stderr);
    // A live process that is not a node, under the recorded pid.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(
        join(cacheDir, 'strata.pid'),
        JSON.stringify({ pid: other.pid, host: hostname(), started: new Date().toISOString() }),
      );
      const reused = await strata('cache', 'stats', '--cache-dir', cacheDir, '--json');
      assert.equal(reused.code, 0, reused.stderr);
    } finally {
      other.kill('SIGKILL');
    }
    // A node restarted on the directory takes the record over.
    const again = await serve(cacheDir, origin.url);
    const record = JSON.parse(readFileSync(join(cacheDir, 'strata.pid'), 'utf8')) as { pid: number };
    assert.equal(record.pid, again.child.pid);
    await stop(again.child);
  });

  it('compacts without the bodies no record references, and a node on the copy serves every entry and stores more', async () => {
    const cacheDir = join(dir, 'compact-orphans');
    const first = await serve(cacheDir, origin.url);
    const host = { headers: { host: 'orphans.test' } };
    const urls = Array.from({ length: 60 }, (_, i) => `/media/2026/${'gallery-'.repeat(12)}${i}`);
    try {
      for (const u of urls) assert.equal((await request(`${first.url}${u}`, host)).status, 200);
    } finally {
      await stop(first.child);
    }
    // Bodies a stop left behind (evicted or replaced within their grace period): 10 MiB.
    const env = open({ path: cacheDir, maxDbs: 16, pageSize: 4096 });
    const chunks = env.openDB<Buffer, [string, number]>({ name: 'chunks', encoding: 'binary' });
    for (let i = 0; i < 40; i++)
      await chunks.put(
        [`${(Date.now() - 3_600_000).toString(36)}.orphan${i}`, 0],
        Buffer.alloc(256 * 1024, i),
      );
    await env.close();
    const before = statSync(join(cacheDir, 'data.mdb')).size;
    const compacted = await strata('cache', 'compact', '--cache-dir', cacheDir, '--json');
    assert.equal(compacted.code, 0, compacted.stderr);
    const after = (JSON.parse(compacted.stdout) as { after: number }).after;
    assert.ok(after < before - 9 * 1024 * 1024, `${after} < ${before} - 9 MiB`);
    const second = await serve(cacheDir, origin.url);
    try {
      const asked = origin.requests;
      for (const u of urls) {
        const hit = await request(`${second.url}${u}`, host);
        assert.match(
          String(hit.headers['cache-status']),
          /strata; hit/,
          `${u}: ${hit.headers['cache-status']} ${hit.status}`,
        );
        assert.equal(hit.text, BODY);
      }
      assert.equal(origin.requests, asked, 'every entry kept');
      for (let i = 0; i < 30; i++) {
        const miss = await request(`${second.url}/after-compact/${'n'.repeat(100)}/${i}`, host);
        assert.match(String(miss.headers['cache-status']), /stored/);
      }
    } finally {
      await stop(second.child);
    }
  });

  it("compacts a stopped node's data file and the node serves what it kept", async () => {
    const cacheDir = join(dir, 'compact');
    const first = await serve(cacheDir, origin.url);
    const urls = Array.from(
      { length: 120 },
      (_, i) => `${first.url}/assets/build-2026-12/${'chunk-'.repeat(8)}${i}`,
    );
    try {
      for (const u of urls) assert.equal((await request(u)).status, 200);
    } finally {
      await stop(first.child);
    }
    const purge = await strata(
      'purge',
      '--prefix',
      `${first.url}/assets/`,
      '--cache-dir',
      cacheDir,
      '--json',
    );
    assert.equal(purge.code, 0, purge.stderr);
    assert.equal(JSON.parse(purge.stdout).purged, 120, purge.stdout);
    const before = statSync(join(cacheDir, 'data.mdb')).size;
    const compacted = await strata('cache', 'compact', '--cache-dir', cacheDir, '--json');
    assert.equal(compacted.code, 0, compacted.stderr);
    const result = JSON.parse(compacted.stdout) as { before: number; after: number };
    assert.equal(result.before, before);
    assert.equal(result.after, statSync(join(cacheDir, 'data.mdb')).size);
    assert.ok(result.after < before / 2, `${result.after} < ${before} / 2`);
    // The compacted directory opens, and a node on it stores and serves again.
    const second = await serve(cacheDir, origin.url);
    try {
      const miss = await request(`${second.url}/after-compact`);
      assert.match(String(miss.headers['cache-status']), /fwd=miss/);
      const requestsBefore = origin.requests;
      const hit = await request(`${second.url}/after-compact`);
      assert.equal(origin.requests, requestsBefore);
      assert.match(String(hit.headers['cache-status']), /strata; hit/);
      assert.equal(hit.body.length, BODY.length);
    } finally {
      await stop(second.child);
    }
  });
});
