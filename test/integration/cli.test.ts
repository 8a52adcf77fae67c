import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const dir = mkdtempSync(join(tmpdir(), 'strata-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `strata serve --config FILE` on free ports with a cache of its own; its stderr as it comes. */
function serve(file: string, cacheName: string) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--config',
      file,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(dir, cacheName),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr = { text: '' };
  const stdout = { text: '' };
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr.text += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout.text += chunk.toString();
  });
  return { child, stderr, stdout };
}

describe('the strata command', () => {
  it('starts on its embedded defaults in front of the demo origin, answers curl, and drains on SIGTERM', async () => {
    // README's quick start is `npm start`, i.e. `strata serve` with no flags; ports are left to the
    // system here only so the test cannot collide with anything already on 8080.
    const child = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        '127.0.0.1:0',
        '--cache-dir',
        join(dir, 'cache'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner in time: ${stderr}`)), 15_000);
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /serving on (http:\/\/[\d.:]+)/.exec(stderr);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      assert.match(stderr, /demo origin/);
      assert.match(stderr, /curl -si/);
      const first = await request(`${url}/`);
      assert.equal(first.status, 200);
      assert.match(first.text, /Strata demo origin/);
      let second = await request(`${url}/`);
      for (let i = 0; i < 20 && !/hit/.test(String(second.headers['cache-status'])); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        second = await request(`${url}/`);
      }
      assert.match(String(second.headers['cache-status']), /^strata; hit/);
      assert.equal(second.text, first.text);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('serve refuses an --origin that is not an origin URL, before it binds a port or opens a cache', () => {
    for (const origin of [
      'notaurl',
      'ftp://x',
      'http://',
      'http://host:99999',
      'http://127.0.0.1:3000/app',
      'http://user:secret@127.0.0.1:3000',
    ]) {
      const cache = join(dir, 'refused-cache');
      const result = spawnSync(
        process.execPath,
        [CLI, 'serve', '--origin', origin, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'].concat(
          ['--cache-dir', cache],
        ),
        { encoding: 'utf8', timeout: 15_000 },
      );
      assert.equal(result.status, 1, `${origin}: ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /serving on/, origin);
      assert.match(
        result.stderr,
        /^ {2}--origin: ".*" is not an origin URL: expected http:\/\/HOST:PORT/m,
        origin,
      );
      assert.ok(!existsSync(cache), origin);
    }
  });

  it('says it needs Node 24 with type stripping instead of failing on an unknown .ts extension', () => {
    // Regression: a Node that cannot strip types (Node 20 on the PATH, or this flag) died with
    // ERR_UNKNOWN_FILE_EXTENSION on src/start-flags.ts, which named neither Node 24 nor npm run.
    const entry = join(import.meta.dirname, '..', '..', 'cli', 'strata.js');
    const result = spawnSync(process.execPath, ['--no-experimental-strip-types', entry, '--version'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.doesNotMatch(result.stderr, /ERR_UNKNOWN_FILE_EXTENSION/);
    assert.match(result.stderr, /^strata: needs Node\.js 24 with type stripping; this is Node\.js v24\./);
    assert.match(result.stderr, /npm run -s strata -- ARGS/);
  });

  it('check-config reports every problem with its path and exits 1, or says valid', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'listeners:\n  - listen: nowhere\ncache:\n  maxSize: 4XB\n  colour: blue\nsites:\n  - name: s\n    hosts: ["*"]\n    origins: [missing]\n',
    );
    const result = spawnSync(process.execPath, [CLI, 'check-config', bad], { encoding: 'utf8' });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /listeners\[0\]\.listen: expected HOST:PORT/);
    assert.match(result.stderr, /cache\.maxSize: "4XB" is not a size/);
    assert.match(result.stderr, /cache: unknown key colour/);
    assert.match(result.stderr, /sites\[0\]\.origins\[0\]: no origin named "missing"/);
    const good = join(dir, 'good.yaml');
    writeFileSync(
      good,
      'origins:\n  - name: app\n    url: http://127.0.0.1:3000\nsites:\n  - name: app\n    hosts: ["example.com", "*.example.com"]\n    origins: [app]\ncache:\n  maxSize: 1GiB\n',
    );
    const ok = spawnSync(process.execPath, [CLI, 'check-config', good], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /valid/);
  });

  it('reloads sites and origins on SIGHUP without stopping, and keeps the running config when the new one is invalid', async () => {
    const { startOrigin, respond } = await import('../helpers/origin.ts');
    const first = await startOrigin({ '/who': respond(200, { 'cache-control': 'no-store' }, 'first') });
    const second = await startOrigin({ '/who': respond(200, { 'cache-control': 'no-store' }, 'second') });
    const file = join(dir, 'reload.yaml');
    const configFor = (url: string) =>
      `origins:\n  - name: app\n    url: ${url}\nsites:\n  - name: app\n    hosts: ["*"]\n    origins: [app]\n`;
    writeFileSync(file, configFor(first.url));
    const { child, stderr: output, stdout: log } = serve(file, 'reload-cache');
    const stderr = () => output.text;
    const waitFor = async (pattern: RegExp) => {
      await until(() => pattern.test(stderr()), 15_000, 100);
      const match = pattern.exec(stderr());
      assert.ok(match, `no ${pattern} in: ${stderr()}`);
      return match;
    };
    try {
      const url = (await waitFor(/serving on (http:\/\/[\d.:]+)/))[1]!;
      assert.equal((await request(`${url}/who`)).text, 'first');
      writeFileSync(file, configFor(second.url));
      child.kill('SIGHUP');
      await waitFor(/SIGHUP: sites and origins reloaded/);
      assert.equal((await request(`${url}/who`)).text, 'second');
      writeFileSync(file, 'origins: nonsense\n');
      child.kill('SIGHUP');
      await waitFor(/configuration not reloaded/);
      // Logged as well, as a node with workers logs it: the problem, no stack.
      assert.ok(await until(() => log.text.includes('config reload failed'), 5000), log.text);
      const line = log.text.split('\n').find((entry) => entry.includes('config reload failed'))!;
      assert.match(JSON.parse(line).reason, /origins/);
      assert.doesNotMatch(line, /\n\s+at /);
      assert.equal((await request(`${url}/who`)).text, 'second');
      assert.equal(child.exitCode, null, 'still running');
    } finally {
      child.kill('SIGKILL');
      await first.close();
      await second.close();
    }
  });

  it('names a host in its curl hint when the sites answer only their own hosts', async () => {
    const { startOrigin, respond } = await import('../helpers/origin.ts');
    const origin = await startOrigin({ '/': respond(200, { 'cache-control': 'max-age=60' }, 'shop') });
    const file = join(dir, 'named.yaml');
    writeFileSync(
      file,
      `origins:\n  - { name: app, url: "${origin.url}" }\nsites:\n  - { name: shop, hosts: [shop.example, "*.shop.example"], origins: [app] }\n`,
    );
    const { child, stderr: output } = serve(file, 'named-cache');
    const stderr = () => output.text;
    try {
      assert.ok(await until(() => /try {3}curl/.test(stderr()), 15_000, 100), stderr());
      const hint = /try {3}curl -si -H 'Host: ([^']+)' (http:\/\/[\d.:]+)\//.exec(stderr());
      assert.ok(hint, stderr());
      assert.equal(hint[1], 'shop.example');
      const answer = await request(`${hint[2]}/`, { headers: { host: hint[1]! } });
      assert.equal(answer.status, 200, 'the hint answers, not 421');
      assert.equal((await request(`${hint[2]}/`)).status, 421, 'the bare address has no site');
    } finally {
      child.kill('SIGKILL');
      await origin.close();
    }
  });

  it('gives an https curl hint when its listener is TLS', async () => {
    const { createFixtures } = await import('../helpers/certs.ts');
    const fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    const file = join(dir, 'tls.yaml');
    writeFileSync(
      file,
      `listeners:\n  - { listen: "127.0.0.1:0", tls: { cert: "${leaf.cert}", key: "${leaf.key}" } }\norigins:\n  - { name: app, url: "http://127.0.0.1:9" }\nsites:\n  - { name: all, hosts: ["*"], origins: [app] }\n`,
    );
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--config', file, '--cache-dir', join(dir, 'tls-cache')],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    try {
      assert.ok(await until(() => /try {3}curl/.test(stderr), 15_000, 100), stderr);
      assert.match(stderr, /try {3}curl -si https:\/\/127\.0\.0\.1:\d+\/ /, 'the scheme the listener speaks');
    } finally {
      child.kill('SIGKILL');
      fixtures.remove();
    }
  });
});
