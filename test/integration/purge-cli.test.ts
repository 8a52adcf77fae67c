import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const CLI = join(import.meta.dirname, '../../cli/strata.ts');
const VARIED = `/guides/${'travel-'.repeat(12)}lisbon.html?edition=2026&lang=auto`;

async function strata(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      timeout: 20_000,
      env: { ...process.env, STRATA_ADMIN_TOKEN: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('strata purge and strata cache', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({
      '/doc/1': respond(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'docs one' }, 'one'),
      '/doc/2': respond(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'docs' }, 'two'),
      [VARIED]: respond(
        200,
        { 'cache-control': 'max-age=60', vary: 'Accept-Language, Accept-Encoding' },
        'varied',
      ),
    });
    edge = await startAdminNode({ origin: origin.url });
    await edge.get('/doc/1');
    await edge.get('/doc/2');
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const admin = () => ['--admin', edge.admin, '--token', TOKEN];

  it('lists, inspects and summarizes the cache through the admin API', async () => {
    const ls = await strata('cache', 'ls', '--prefix', `${edge.base}/doc/`, ...admin(), '--json');
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      JSON.parse(ls.stdout).entries.map((e: { url: string }) => e.url),
      [`${edge.base}/doc/1`, `${edge.base}/doc/2`],
    );
    const table = await strata('cache', 'ls', '--tag', 'one', ...admin());
    assert.match(table.stdout, /^URL\s+VARY\s+STATUS\s+SIZE\s+AGE\s+TTL\s+STATE\s+TAGS\n/);
    assert.match(table.stdout, /\/doc\/1\s+-\s+200\s+3 B\s+\d+s\s+\d+s\s+fresh\s+docs one/);
    const inspect = await strata('cache', 'inspect', `${edge.base}/doc/1`, ...admin());
    assert.equal(inspect.code, 0);
    assert.match(inspect.stdout, /state\s+fresh/);
    const missing = await strata('cache', 'inspect', `${edge.base}/doc/none`, ...admin());
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /nothing stored/);
    const stats = await strata('cache', 'stats', ...admin(), '--json');
    assert.equal(JSON.parse(stats.stdout).store.entries, 2);
  });

  it('prints a variant of two Vary fields on one row of the table and one line of inspect', async () => {
    for (const lang of ['pt-PT', 'en-GB'])
      await edge.get(VARIED, { headers: { 'accept-language': lang, 'accept-encoding': 'gzip' } });
    const table = await strata('cache', 'ls', '--prefix', `${edge.base}/guides/`, ...admin());
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, table.stdout);
    for (const lang of ['pt-pt', 'en-gb']) {
      const row = lines.find((line) => line.includes(`accept-language=${lang}`));
      assert.ok(row, `${lang} in ${table.stdout}`);
      assert.match(row, /accept-encoding=\S+; accept-language=\S+\s+200\s+6 B\s+\d+s\s+\d+s\s+fresh\s+-$/i);
      assert.ok(row.startsWith(`${edge.base}${VARIED} `));
    }
    const inspect = await strata('cache', 'inspect', `${edge.base}${VARIED}`, ...admin());
    assert.equal(inspect.code, 0);
    assert.equal(
      inspect.stdout.match(/^variant\s+accept-encoding=\S+; accept-language=\S+$/gim)?.length,
      2,
      inspect.stdout,
    );
    await strata('purge', '--prefix', `${edge.base}/guides/`, ...admin());
  });

  it('purges through the admin API and prints what was purged', async () => {
    const result = await strata('purge', '--tag', 'one', '--soft', ...admin());
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^soft purge of 1 tag: 1 entry marked stale, sequence \d+\n/);
    assert.match(result.stdout, /tag\s+one/);
    const json = await strata('purge', '--url', `${edge.base}/doc/1`, ...admin(), '--json');
    assert.deepEqual({ ...JSON.parse(json.stdout), sequence: 0 }, { purged: 1, soft: false, sequence: 0 });
    assert.equal(origin.count('/doc/1'), 1);
  });

  it('purges a host, and prints the warning when nothing matched', async () => {
    await edge.get('/doc/2');
    const host = new URL(edge.base).host;
    const byHost = await strata('purge', '--host', host, ...admin());
    assert.equal(byHost.code, 0, byHost.stderr);
    assert.match(byHost.stdout, /^hard purge of 1 host: 1 entry removed, sequence \d+\n/);
    assert.match(byHost.stdout, new RegExp(`host\\s+${host.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(byHost.stdout, /warning/);
    const none = await strata('purge', '--url', `${edge.base}/doc/${'never-stored-'.repeat(8)}`, ...admin());
    assert.equal(none.code, 0);
    assert.match(none.stdout, /\nwarning: nothing matched: no stored entry was removed/);
    const json = await strata('purge', '--tag', 'never-sent', ...admin(), '--json');
    assert.match(JSON.parse(json.stdout).warning, /^nothing matched/);
    // What the next test expects stored again: /doc/2 (a miss after the host purge).
    await edge.get('/doc/2');
    assert.equal(origin.count('/doc/2'), 2);
  });

  it('refuses a wrong token or an empty purge with one line, without printing the token', async () => {
    const wrong = await strata('purge', '--all', '--admin', edge.admin, '--token', 'not-the-token-at-all');
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /refused the token \(401\): it is not the admin token of the node at http:\/\/127\.0\.0\.1:\d+/,
    );
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /not-the-token-at-all/);
    const none = await strata('purge', '--all', '--admin', edge.admin);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no token was given: give --token or STRATA_ADMIN_TOKEN/);
    const empty = await strata('purge', ...admin());
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /give --url, --prefix, --tag, --host or --all/);
    const badHost = await strata(
      'purge',
      '--url',
      `http://a b/${'catalogue/'.repeat(12)}page.html`,
      ...admin(),
    );
    assert.equal(badHost.code, 1);
    assert.match(badHost.stderr, /names no valid host \("a b"\)/);
    assert.ok(edge.node.store.usage().entries >= 1, 'nothing was purged');
  });

  it('fails, saying so, when --admin names a server that is not the admin API', async () => {
    const before = edge.node.store.usage().entries;
    // A web server with no /purge (404), then one answering every path with a page (200).
    for (const route of [undefined, respond(200, { 'content-type': 'text/html' }, '<html>welcome</html>')]) {
      if (route) origin.route('/purge', route);
      const wrong = await strata('purge', '--all', '--admin', origin.url, '--token', TOKEN);
      assert.equal(wrong.code, 1, wrong.stdout);
      assert.match(
        wrong.stderr,
        /^strata: http:\/\/127\.0\.0\.1:\d+ did not answer as a Strata admin API \((404|200)\): is --admin the node's admin listener\?/,
      );
      assert.doesNotMatch(wrong.stdout, /undefined/);
      assert.doesNotMatch(wrong.stderr, new RegExp(TOKEN));
    }
    // The node's client port (it refuses the admin token there), and a server answering 501 with
    // a page of many lines: one line each, naming the likely mistake.
    origin.route(
      '/purge',
      respond(
        501,
        { 'content-type': 'text/html' },
        '<html>\n<head><title>501</title></head>\n<body>Unsupported method</body>\n</html>\n',
      ),
    );
    for (const url of [edge.base, origin.url]) {
      const wrong = await strata('purge', '--all', '--admin', url, '--token', TOKEN);
      assert.equal(wrong.code, 1, wrong.stdout);
      assert.match(
        wrong.stderr,
        /^strata: http:\/\/127\.0\.0\.1:\d+ did not answer as a Strata admin API \((403|501): [^\n]*\): is --admin the node's admin listener\?\n$/,
      );
    }
    assert.equal(edge.node.store.usage().entries, before, 'nothing was purged');
    // The cache commands say the same instead of a TypeError.
    for (const args of [
      ['stats'],
      ['ls', '--prefix', `${edge.base}/doc/`],
      ['inspect', `${edge.base}/doc/1`],
    ]) {
      const wrong = await strata('cache', ...args, '--admin', origin.url, '--token', TOKEN);
      assert.equal(wrong.code, 1, wrong.stdout);
      assert.match(
        wrong.stderr,
        /^strata: http:\/\/127\.0\.0\.1:\d+ did not answer as a Strata admin API \((404|200)\)/,
      );
    }
  });

  it('takes --admin with the scheme in capitals, and refuses another scheme saying so', async () => {
    await edge.get('/doc/2');
    const upper = await strata(
      'purge',
      '--url',
      `${edge.base}/doc/2`,
      '--admin',
      edge.admin.toUpperCase(),
      '--token',
      TOKEN,
    );
    assert.equal(upper.code, 0, upper.stderr);
    assert.match(upper.stdout, /1 entry removed/);
    await edge.get('/doc/2'); // stored again, as the tests after this one expect
    const other = await strata(
      'purge',
      '--all',
      '--admin',
      edge.admin.replace('http:', 'ftp:'),
      '--token',
      TOKEN,
    );
    assert.equal(other.code, 1, other.stdout);
    assert.match(other.stderr, /^strata: --admin ftp:\/\/127\.0\.0\.1:\d+ is not an http:\/\/ URL/);
    assert.doesNotMatch(other.stderr, /http:\/\/ftp:/);
  });

  it('tells an operator whose node was started without an admin token how to give it one', async () => {
    const bare = await startAdminNode({ origin: origin.url, admin: { token: undefined } });
    try {
      for (const token of [['--token', 'change-me-to-16-characters-or-more'], []]) {
        const refused = await strata('purge', '--tag', 'docs', '--admin', bare.admin, ...token);
        assert.equal(refused.code, 1);
        assert.match(
          refused.stderr,
          /^strata: the node at http:\/\/127\.0\.0\.1:\d+\/? has no admin token configured, so its admin API refuses every call: start it with --admin-token TOKEN/,
        );
        assert.doesNotMatch(refused.stderr, /change-me/);
      }
    } finally {
      await bare.close();
    }
  });

  it("purges a stopped node's cache directory directly; the node starts without it and with the purge logged", async () => {
    const dir = join(edge.dir, 'cache');
    const base = edge.base;
    await edge.close({ keepDir: true });
    const purged = await strata('purge', '--prefix', `${base}/doc/`, '--cache-dir', dir, '--json');
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(JSON.parse(purged.stdout).purged, 1);
    const stats = await strata('cache', 'stats', '--cache-dir', dir, '--json');
    assert.equal(JSON.parse(stats.stdout).store.entries, 0);
    const none = await strata('cache', 'ls', '--cache-dir', join(dir, 'nope'));
    assert.match(none.stderr, /no cache directory/);

    edge = await startAdminNode({ origin: origin.url, dir: edge.dir });
    assert.equal(edge.node.store.lookup(`${base}/doc/2`, {}).kind, 'miss');
    const logged = edge.node.purge.log.get(edge.node.purge.log.sequence);
    assert.deepEqual(logged?.command.prefixes, [`${base}/doc/`]);
  });
});
