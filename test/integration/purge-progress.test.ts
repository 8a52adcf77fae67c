/**
 * Progress of long work: a purge of a large tag or prefix through the admin API with
 * `Accept: application/x-ndjson` (progress lines, then the usual answer), `strata purge
 * --progress` (online and offline), and the progress lines of the startup scan.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Evictor } from '../../src/cache/eviction.ts';
import { storageKey } from '../../src/cache/key.ts';
import type { CacheStore } from '../../src/cache/store.ts';
import { recoverPurges } from '../../src/purge/quarantine.ts';
import { PurgeService } from '../../src/purge/service.ts';
import { request } from '../helpers/http.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { entryRecord } from '../helpers/records.ts';
import { type AdminNode, startAdminNode, TOKEN } from './purge-support.ts';

const CLI = join(import.meta.dirname, '../../cli/strata.ts');
const SEEDED = 6000;

async function strata(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      timeout: 30_000,
      env: { ...process.env, STRATA_ADMIN_TOKEN: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `count` records of real length under `base`/catalogue/, tagged `tag`, written straight to the store. */
async function seed(store: CacheStore, base: string, tag: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    await store.write(() => {
      for (let i = start; i < Math.min(count, start + 1000); i++) {
        const url = `${base}/catalogue/${tag}/${'seasonal-collection-'.repeat(4)}item-${String(i).padStart(6, '0')}.html?ref=progress`;
        const key = storageKey(url);
        store.commitEntryInTxn(key, key, entryRecord({ url, tags: [tag], bodyId: `seed-${tag}-${i}` }));
      }
    });
  }
}

interface Progress {
  visited: number;
  total: number;
  purged: number;
  elapsedMs: number;
}

describe('progress of long purges and the startup scan', () => {
  let origin: TestOrigin;
  let edge: AdminNode;

  before(async () => {
    origin = await startOrigin({
      '/catalogue/big/real.html': respond(
        200,
        { 'cache-control': 'max-age=600', 'surrogate-key': 'big' },
        'real',
      ),
    });
    edge = await startAdminNode({ origin: origin.url, purge: { batchSize: 50 } });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('streams progress lines for a large tag purge, then the answer it gives without them', async () => {
    await seed(edge.node.store, edge.base, 'big', SEEDED);
    await edge.get('/catalogue/big/real.html');
    assert.equal(origin.count('/catalogue/big/real.html'), 1);

    const response = await request(`${edge.admin}/purge`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        accept: 'application/x-ndjson',
      },
      body: JSON.stringify({ tags: ['big'] }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/x-ndjson');
    const lines = response.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    const progress = lines.slice(0, -1).map((line) => (line as { progress: Progress }).progress);
    assert.ok(progress.length >= 1);
    // The first line comes once the purge is logged: after its first batch (50 keys).
    assert.deepEqual(
      { ...progress[0]!, elapsedMs: 0 },
      { visited: 50, total: SEEDED + 1, purged: 50, elapsedMs: 0 },
    );
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.visited >= progress[i - 1]!.visited);
    const answer = lines.at(-1) as { purged: number; soft: boolean; sequence: number };
    assert.deepEqual(Object.keys(answer).sort(), ['purged', 'sequence', 'soft']);
    assert.equal(answer.purged, SEEDED + 1);

    assert.match(String((await edge.get('/catalogue/big/real.html')).headers['cache-status']), /fwd=miss/);
    assert.equal(origin.count('/catalogue/big/real.html'), 2);
  });

  it('answers one JSON object without the Accept header, as before', async () => {
    await seed(edge.node.store, edge.base, 'plain', 200);
    const response = await edge.call('POST', '/purge', { tags: ['plain'] });
    assert.equal(response.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(response.text).purged, 200);
  });

  it('strata purge --progress prints counts and a rate on stderr, and stays quiet without it', async () => {
    await seed(edge.node.store, edge.base, 'cli', SEEDED);
    const admin = ['--admin', edge.admin, '--token', TOKEN];
    const shown = await strata('purge', '--prefix', `${edge.base}/catalogue/cli/`, '--progress', ...admin);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stderr, /^purging: 50\/6,000 visited \(0%\), 50 purged, [\d,]+\/s, \d\.\d s\n/);
    assert.match(shown.stdout, /^hard purge of 1 prefix: 6000 entries removed/);

    await seed(edge.node.store, edge.base, 'quiet', 500);
    const quiet = await strata('purge', '--tag', 'quiet', ...admin);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    assert.match(quiet.stdout, /500 entries removed/);
  });

  it('shows the progress of an offline purge, and logs the startup scan of a large cache', async () => {
    const base = edge.base;
    await seed(edge.node.store, base, 'offline', SEEDED);
    await edge.close({ keepDir: true });
    const dir = join(edge.dir, 'cache');
    const offline = await strata('purge', '--tag', 'offline', '--cache-dir', dir, '--progress');
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stderr, /^purging: [1-9][\d,]*\/6,000 visited/);
    assert.match(offline.stdout, /6000 entries removed, sequence \d+ \(offline/);

    edge = await startAdminNode({ origin: origin.url, dir: edge.dir, purge: { batchSize: 50 } });
    await seed(edge.node.store, base, 'scan', 25_000);
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
        done();
      },
    });
    const evictor = new Evictor(edge.node.store, { maxSize: 1024 ** 3, log: pino({ level: 'info' }, sink) });
    await evictor.sweepOrphans(Date.now() - 1000, 0);
    const progress = lines.filter((line) => line.msg === 'startup scan: checking stored records');
    assert.ok(progress.length >= 2, JSON.stringify(lines));
    assert.equal(progress[0]!.scanned, 10_000);
    assert.ok((progress[0]!.total as number) >= 25_000);
    assert.ok((progress[0]!.rate as number) > 0);
    assert.ok(lines.some((line) => line.msg === 'startup scan done' && (line.records as number) >= 25_000));
  });

  it('reports no progress before the purge is logged: the 200 of a progress stream means it is durable', async () => {
    await seed(edge.node.store, edge.base, 'durable', SEEDED);
    const store = edge.node.store;
    const service = new PurgeService({
      store,
      log: pino({ level: 'silent' }),
      sortQuery: () => false,
      batchSize: 50,
      now: Date.now,
    });
    const before = service.log.sequence;
    // What the log holds each time progress is reported (the admin API writes a line, and with
    // the first one its 200, at each report; before: the first came before anything was written,
    // so a node dying then had answered 200 to a purge it never logged).
    const logged: boolean[] = [];
    const result = await service.purge(
      { urls: [], prefixes: [], tags: ['durable'], all: false, soft: false },
      undefined,
      () => logged.push(service.log.get(before + 1) !== undefined),
    );
    assert.equal(result.sequence, before + 1);
    assert.equal(result.purged, SEEDED);
    assert.ok(logged.length >= 2, `${logged.length} reports`);
    assert.deepEqual(
      logged.filter((held) => !held),
      [],
    );
  });

  it('logs the progress of an interrupted purge finished at startup', async () => {
    await seed(edge.node.store, edge.base, 'interrupted', SEEDED);
    const store = edge.node.store;
    const service = new PurgeService({
      store,
      log: pino({ level: 'silent' }),
      sortQuery: () => false,
      batchSize: 50,
      now: Date.now,
    });
    const sequence = await store.write(() =>
      service.log.appendInTxn({
        command: { urls: [], prefixes: [], tags: ['interrupted'], all: false, soft: false },
        at: Date.now(),
        path: [],
        applied: false,
      }),
    );
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    await recoverPurges({ service, store, log, sortQuery: () => false, batchSize: 50, now: Date.now }, 0);
    const progress = lines.filter((line) => line.msg === 'finishing an interrupted purge: progress');
    assert.ok(progress.length >= 2);
    assert.equal(progress[0]!.sequence, sequence);
    assert.equal(progress[0]!.total, SEEDED);
    assert.ok((progress.at(-1)!.visited as number) > (progress[0]!.visited as number));
    assert.equal(service.log.get(sequence)?.applied, true);
    assert.equal([...store.tagged('interrupted')].length, 0);
  });
});
