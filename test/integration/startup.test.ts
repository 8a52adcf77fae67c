/**
 * `strata serve` that cannot start says what failed in one line and exits 1: which listener's
 * port is taken, a cache directory that is a file or sits on /proc (where Node's recursive mkdir
 * spins forever), a config file without sites (the demo origin never starts behind a file).
 * No stack traces.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const dir = mkdtempSync(join(tmpdir(), 'strata-startup-'));

const env = { ...process.env };
delete env.STRATA_ADMIN_TOKEN;
delete env.STRATA_CONFIG;

function serve(...args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'serve', ...args], { timeout: 20_000, env }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/** The one line a failed start writes, checked to be one line with no stack frame. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(stderr, /^\s+at /m);
  return lines[0]!;
}

describe('strata serve startup failures', () => {
  let taken: Server;
  let port: number;
  before(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });
  after(() => {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const origin = ['--origin', 'http://127.0.0.1:9'];

  it('names the client listener whose port is in use', async () => {
    const result = await serve(
      ...origin,
      '--listen',
      `127.0.0.1:${port}`,
      '--admin-listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(dir, 'a'),
    );
    assert.equal(result.code, 1);
    assert.equal(
      oneLine(result.stderr),
      `strata: client listener 127.0.0.1:${port}: address already in use (another process listens there)`,
    );
  });

  it('names the admin listener whose port is in use', async () => {
    const result = await serve(
      ...origin,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      `127.0.0.1:${port}`,
      '--cache-dir',
      join(dir, 'b'),
    );
    assert.equal(result.code, 1);
    assert.equal(
      oneLine(result.stderr),
      `strata: admin listener 127.0.0.1:${port}: address already in use (another process listens there)`,
    );
  });

  it('refuses a cache directory that is a file, or under one', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const result = await serve(
      ...origin,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--cache-dir',
      file,
    );
    assert.equal(result.code, 1);
    assert.equal(oneLine(result.stderr), `strata: cache.dir ${file}: is a file, not a directory`);
    const under = await serve(
      ...origin,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(file, 'cache'),
    );
    assert.equal(
      oneLine(under.stderr),
      `strata: cache.dir ${join(file, 'cache')}: ${file} is a file, not a directory`,
    );
  });

  it('fails at once on a cache directory under /proc instead of spinning', async () => {
    const started = performance.now();
    const result = await serve(
      ...origin,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--cache-dir',
      '/proc/strata-cache',
    );
    assert.equal(result.code, 1);
    assert.equal(
      oneLine(result.stderr),
      'strata: cache.dir /proc/strata-cache: is on a proc filesystem (/proc), which cannot hold a cache',
    );
    assert.ok(performance.now() - started < 15_000);
  });

  it('never starts the demo origin behind a config file without sites', async () => {
    const file = join(dir, 'no-sites.yaml');
    writeFileSync(
      file,
      `cache:\n  dir: ${join(dir, 'c')}\nlisteners:\n  - listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n`,
    );
    const result = await serve('--config', file);
    assert.equal(result.code, 1);
    assert.equal(
      oneLine(result.stderr),
      `strata: ${file} defines no sites: add sites and origins to it (docs/configuration.md), or give --origin URL (STRATA_ORIGIN)`,
    );
    assert.doesNotMatch(result.stderr, /demo/);
  });
});

describe('strata healthcheck (the container HEALTHCHECK)', () => {
  it('follows the admin listener the configuration names', async () => {
    const { spawn, execFileSync } = await import('node:child_process');
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const adminPort = (free.address() as { port: number }).port;
    await new Promise((resolve) => free.close(resolve));
    const work = mkdtempSync(join(tmpdir(), 'strata-health-'));
    const file = join(work, 'strata.yaml');
    writeFileSync(
      file,
      `listeners:\n  - listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:${adminPort}\norigins:\n  - name: app\n    url: http://127.0.0.1:9\nsites:\n  - name: all\n    hosts: ["*"]\n    origins: [app]\ncache:\n  dir: ${join(work, 'cache')}\n`,
    );
    const check = () => {
      try {
        return {
          code: 0,
          out: execFileSync(process.execPath, [CLI, 'healthcheck'], {
            env: { ...env, STRATA_CONFIG: file },
            encoding: 'utf8',
          }),
        };
      } catch (error) {
        return {
          code: (error as { status: number }).status,
          out: String((error as { stdout: string }).stdout),
        };
      }
    };
    const down = check();
    assert.equal(down.code, 1);
    assert.match(
      down.out,
      new RegExp(`^http://127\\.0\\.0\\.1:${adminPort}/healthz: ECONNREFUSED \\(is the node running`),
    );
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...env, STRATA_CONFIG: file },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        const timer = setTimeout(() => reject(new Error(stderr)), 20_000);
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('serving on')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const up = check();
      assert.equal(up.code, 0, up.out);
      assert.match(up.out, new RegExp(`^http://127\\.0\\.0\\.1:${adminPort}/healthz: 200 \\{"status":"ok"`));
    } finally {
      await new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('says where it looked when STRATA_CONFIG names no file', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, 'serve'],
        { env: { ...env, STRATA_CONFIG: '/etc/strata-missing/strata.yaml' } },
        (error, _out, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      ),
    );
    assert.equal(result.code, 1);
    assert.equal(
      oneLine(result.stderr),
      'strata: no config file at /etc/strata-missing/strata.yaml (from STRATA_CONFIG): mount or write one there (docs/configuration.md, docs/docker.md), or set STRATA_CONFIG= and give --origin URL',
    );
  });
});
