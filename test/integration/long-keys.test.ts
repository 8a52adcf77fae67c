/**
 * Keys of every length round-trip through LMDB: URLs of 20, 40–42 (a variant key of 63–65
 * characters), 63, 64, 65 and 2,000 characters, each with two Vary variants, can be listed,
 * inspected, purged by URL, prefix, tag and all, and are served again after a restart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCacheDirectory } from '../../src/index.ts';
import { request } from '../helpers/http.ts';
import { type Route, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const HOST = 'h.test';
const BASE = `http://${HOST}`;
const LENGTHS = [20, 40, 41, 42, 63, 64, 65, 2000];
const LANGUAGES = ['en', 'fr'];

/** A path making the URL `http://h.test<path>` exactly `length` characters long. */
function pathOf(length: number): string {
  const rest = length - BASE.length;
  const head = `/${length}-`;
  return head + 'x'.repeat(rest - head.length);
}

const paths = LENGTHS.map(pathOf);

const varied: Route = (req, res) => {
  res.writeHead(200, {
    'cache-control': 'max-age=600',
    vary: 'Accept-Language',
    'surrogate-key': `all-long len-${req.url!.split('-')[0]!.slice(1)}`,
    'content-type': 'text/plain',
  });
  res.end(`${req.url} in ${req.headers['accept-language']}`);
};

describe('keys of every length', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin();
    for (const path of paths) origin.route(path, varied);
  });
  after(async () => {
    await edge?.close();
    await origin.close();
  });

  const get = (path: string, language: string) =>
    request(`${edge.url}${path}`, { headers: { host: HOST, 'accept-language': language } });

  async function fillAll(): Promise<void> {
    for (const path of paths) {
      for (const language of LANGUAGES) {
        const res = await get(path, language);
        assert.equal(res.status, 200);
        assert.equal(res.text, `${path} in ${language}`);
        await edge.node.idle();
      }
    }
  }

  async function assertAllHit(): Promise<void> {
    for (const path of paths) {
      for (const language of LANGUAGES) {
        const res = await get(path, language);
        assert.equal(res.text, `${path} in ${language}`);
        assert.match(
          String(res.headers['cache-status']),
          /^strata; hit/,
          `${path.length} ${language} is a hit`,
        );
      }
    }
  }

  it('lists, inspects and serves every variant, also after a restart', async () => {
    edge = await startAdminNode({ origin: origin.url });
    await fillAll();
    await assertAllHit();
    assert.equal(origin.count(), paths.length * 2);

    const listed = await edge.call('GET', `/cache?prefix=${encodeURIComponent(`${BASE}/`)}&limit=1000`);
    assert.equal(listed.status, 200, listed.text);
    const ids = (JSON.parse(listed.text) as { entries: Array<{ url: string }> }).entries.map((e) => e.url);
    for (const path of paths) assert.equal(ids.filter((url) => url === `${BASE}${path}`).length, 2);

    for (const path of paths) {
      const inspected = await edge.call('GET', `/cache?url=${encodeURIComponent(`${BASE}${path}`)}`);
      assert.equal(inspected.status, 200, `inspect ${path.length}`);
      assert.equal((JSON.parse(inspected.text) as { variants: unknown[] }).variants.length, 2);
    }

    const dir = edge.dir;
    await edge.close({ keepDir: true });
    const cli = (...args: string[]) => {
      const run = spawnSync(
        process.execPath,
        [CLI, 'cache', ...args, '--cache-dir', `${dir}/cache`, '--json'],
        {
          encoding: 'utf8',
          timeout: 20_000,
        },
      );
      assert.equal(run.status, 0, run.stderr);
      return JSON.parse(run.stdout) as { entries?: unknown[]; variants?: unknown[] };
    };
    assert.equal(cli('ls', '--prefix', `${BASE}/`, '--limit', '1000').entries?.length, paths.length * 2);
    assert.equal(cli('inspect', `${BASE}${paths.at(-1)!}`).variants?.length, 2);
    const offline = openCacheDirectory({ dir: `${dir}/cache` });
    try {
      assert.equal(offline.list({ prefix: `${BASE}/`, limit: 1000 }).entries.length, paths.length * 2);
      for (const path of paths) assert.equal(offline.inspect(`${BASE}${path}`).variants.length, 2);
    } finally {
      await offline.close();
    }
    edge = await startAdminNode({ origin: origin.url, dir });
    await assertAllHit();
    assert.equal(origin.count(), paths.length * 2, 'the restarted node served everything from disk');
  });

  for (const by of ['url', 'prefix', 'tag', 'all'] as const) {
    it(`purges every variant of every length by ${by}`, async () => {
      origin.requests.length = 0;
      const before = origin.count();
      await fillAll();
      const filled = origin.count() - before;
      const body =
        by === 'url'
          ? { urls: paths.map((path) => `${BASE}${path}`) }
          : by === 'prefix'
            ? { prefixes: [`${BASE}/`] }
            : by === 'tag'
              ? { tags: ['all-long'] }
              : { all: true };
      const response = await edge.call('POST', '/purge', body);
      assert.equal(response.status, 200, response.text);
      assert.equal((JSON.parse(response.text) as { purged: number }).purged, paths.length * 2);
      await fillAll();
      assert.equal(origin.count() - before - filled, paths.length * 2, 'every variant was fetched again');
      await assertAllHit();
    });
  }

  it('answers the admin API with a token only', async () => {
    const res = await edge.call('GET', '/cache?prefix=http://h.test/', undefined, `${TOKEN}x`);
    assert.equal(res.status, 401);
  });
});
