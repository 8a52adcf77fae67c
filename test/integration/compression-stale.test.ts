/**
 * Codings the node made of an object once that object changes or goes stale: a stale coding is
 * never revalidated in place of its identity entry for ever, and none made from old bytes
 * outlives a new identity entry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createClock } from '../helpers/clock.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, startAdminNode } from './purge-support.ts';

const LONG = `/static/docs/${'chapter-and-section/'.repeat(7)}reference.txt?edition=2026&lang=en-GB`;
const PATH = LONG.split('?')[0]!;

describe('codings made by the node, after their object changes or goes stale', () => {
  let origin: TestOrigin;
  let version = 1;
  const validators = false;
  const clock = createClock();
  const body = (v: number) => `version ${v}: ${'compressible text, over and over. '.repeat(80)}`;

  before(async () => {
    origin = await startOrigin({
      [PATH]: (_req, res) => {
        res.writeHead(200, {
          'cache-control': 'max-age=2',
          'content-type': 'text/plain',
          ...(validators ? { etag: `"v${version}"` } : {}),
        });
        res.end(body(version));
      },
    });
  });
  after(() => origin.close());

  let edge: AdminNode;
  const get = (encoding: string, extra: Record<string, string> = {}) =>
    edge.get(LONG, { headers: { 'accept-encoding': encoding, ...extra } });
  const text = (res: { headers: Record<string, unknown>; body: Buffer }) =>
    res.headers['content-encoding'] === 'gzip' ? gunzipSync(res.body).toString() : res.body.toString();

  /** Four gzip requests: at most one reaches the origin; the last three, gzip, are returned. */
  const fourGzip = async (before: number) => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get('gzip'));
    assert.ok(origin.count(LONG) - before <= 1, `origin asked ${origin.count(LONG) - before} times`);
    for (const res of answers.slice(1)) assert.equal(res.headers['content-encoding'], 'gzip');
    return answers.slice(1);
  };

  const start = async () => {
    version = 1;
    edge = await startAdminNode({ origin: origin.url, now: clock.now });
    await get('identity');
    const gzip = await get('gzip');
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.match(String(gzip.headers['cache-status']), /^strata; hit/);
  };

  it('a stale coding costs one origin fetch, then the coding is made from the new bytes', async () => {
    await start();
    try {
      const before = origin.count(LONG);
      clock.advance(3);
      for (const res of await fourGzip(before)) {
        assert.match(String(res.headers['cache-status']), /^strata; hit/);
        assert.equal(text(res), body(1));
      }
    } finally {
      await edge.close();
    }
  });

  it('after a soft purge, as well', async () => {
    await start();
    try {
      const before = origin.count(LONG);
      await edge.purge({ urls: [`http://127.0.0.1:${new URL(edge.url).port}${LONG}`], soft: true });
      version = 2;
      for (const res of await fourGzip(before)) assert.equal(text(res), body(2));
    } finally {
      await edge.close();
    }
  });

  it('a new identity entry (a forced reload) takes the old codings with it', async () => {
    await start();
    try {
      version = 2;
      const reload = await get('gzip', { 'cache-control': 'no-cache' });
      assert.equal(text(reload), body(2));
      const next = await get('gzip');
      assert.equal(text(next), body(2), 'not the coding made from version 1');
      const br = await get('br');
      assert.equal(br.headers['content-encoding'], 'br');
    } finally {
      await edge.close();
    }
  });
});

for (const validator of ['etag', 'last-modified'] as const) {
  describe(`codings made by the node, after their identity entry was revalidated (304, ${validator}) and then replaced`, () => {
    let origin: TestOrigin;
    let edge: AdminNode;
    let version = 1;
    const clock = createClock();
    const body = (v: number) => `version ${v}: ${'compressible text, over and over. '.repeat(80)}`;

    before(async () => {
      origin = await startOrigin({
        [PATH]: (req, res) => {
          const headers: Record<string, string> = {
            'cache-control': 'max-age=600',
            'content-type': 'text/plain',
          };
          if (validator === 'etag') headers.etag = `"v${version}"`;
          else headers['last-modified'] = new Date(Date.UTC(2026, 0, version)).toUTCString();
          const current =
            validator === 'etag'
              ? req.headers['if-none-match'] === headers.etag
              : req.headers['if-modified-since'] === headers['last-modified'];
          if (current) {
            res.writeHead(304, headers);
            res.end();
            return;
          }
          res.writeHead(200, headers);
          res.end(body(version));
        },
      });
      edge = await startAdminNode({ origin: origin.url, now: clock.now });
    });
    after(async () => {
      await edge.close();
      await origin.close();
    });

    const get = (encoding: string, extra: Record<string, string> = {}) =>
      edge.get(LONG, { headers: { 'accept-encoding': encoding, ...extra } });

    it('a new identity entry takes the codings with it even when a 304 refreshed it in between', async () => {
      await get('identity');
      const first = await get('gzip');
      assert.equal(first.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(first.body).toString(), body(1));
      clock.advance(1);
      // A reload the origin answers 304: the identity entry is refreshed, its bytes kept.
      const refreshed = await get('identity', { 'cache-control': 'no-cache' });
      assert.match(String(refreshed.headers['cache-status']), /fwd-status=304/);
      version = 2;
      clock.advance(1);
      const reload = await get('identity', { 'cache-control': 'no-cache' });
      assert.equal(reload.body.toString(), body(2));
      const next = await get('gzip');
      assert.equal(next.headers['content-encoding'], 'gzip');
      assert.equal(
        gunzipSync(next.body).toString().slice(0, 9),
        'version 2',
        'not the coding made from version 1',
      );
      if (validator === 'etag') assert.equal(next.headers.etag, '"v2-gzip"');
    });
  });
}

describe('a Range request on a stale object whose coding is not stored yet', () => {
  let origin: TestOrigin;
  let version = 1;
  const clock = createClock();
  // Lines that differ, so that every coding is longer than the range asked for.
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i * 7919} of the report, ${i % 13} parts\n`);
  const body = (v: number) => Buffer.from(`version ${v}\n${lines.join('')}`);
  const RANGED = '/ranged/report.txt';
  let base = 0;
  const asked = () => origin.count(RANGED) - base;

  before(async () => {
    // An origin that honours Range (206) and If-None-Match (304), as most do.
    origin = await startOrigin({
      [RANGED]: (req, res) => {
        const headers = {
          'cache-control': 'max-age=60',
          'content-type': 'text/plain',
          etag: `"r${version}"`,
        };
        if (req.headers['if-none-match'] === headers.etag) {
          res.writeHead(304, headers);
          res.end();
          return;
        }
        const whole = body(version);
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
        if (range === null) {
          res.writeHead(200, { ...headers, 'content-length': String(whole.length) });
          res.end(whole);
          return;
        }
        const [first, last] = [Number(range[1]), Math.min(Number(range[2]), whole.length - 1)];
        res.writeHead(206, { ...headers, 'content-range': `bytes ${first}-${last}/${whole.length}` });
        res.end(whole.subarray(first, last + 1));
      },
    });
  });
  after(() => origin.close());

  let edge: AdminNode;
  const get = (encoding: string | undefined, extra: Record<string, string> = {}) =>
    edge.get(RANGED, {
      headers: { ...(encoding === undefined ? {} : { 'accept-encoding': encoding }), ...extra },
    });
  const status = (res: { headers: Record<string, unknown> }) => String(res.headers['cache-status']);

  /** The identity entry and its br coding stored, then stale. */
  const start = async () => {
    version = 1;
    base = origin.count(RANGED);
    edge = await startAdminNode({ origin: origin.url, now: clock.now });
    assert.ok((await get('identity')).body.equals(body(1)));
    assert.equal((await get('br')).headers['content-encoding'], 'br');
    assert.equal(asked(), 1);
    clock.advance(61);
  };

  for (const encoding of ['gzip', 'gzip, deflate, br;q=0.5']) {
    it(`revalidates the identity entry (304) and answers ${encoding} bytes 0-99 of its coding`, async () => {
      await start();
      try {
        const ranged = await get(encoding, { range: 'bytes=0-99' });
        assert.equal(ranged.status, 206);
        assert.match(status(ranged), /fwd=stale; fwd-status=304/);
        assert.equal(ranged.headers['content-encoding'], 'gzip');
        assert.equal(ranged.headers.etag, '"r1-gzip"');
        assert.equal(asked(), 2);
        const sent = origin.requests.at(-1)!.headers;
        assert.equal(sent['if-none-match'], '"r1"');
        assert.equal(sent.range, undefined);
        // Every representation is still stored: none of these asks the origin.
        const identity = await get('identity');
        assert.match(status(identity), /^strata; hit/);
        assert.ok(identity.body.equals(body(1)));
        const gzip = await get('gzip');
        assert.match(status(gzip), /^strata; hit/);
        assert.equal(gzip.headers['content-encoding'], 'gzip');
        assert.ok(gunzipSync(gzip.body).equals(body(1)));
        assert.match(String(ranged.headers['content-range']), new RegExp(`^bytes 0-99/${gzip.body.length}$`));
        assert.ok(ranged.body.equals(gzip.body.subarray(0, 100)));
        assert.equal(asked(), 2);
        // The br coding was kept (not made again): stale on its own, it is revalidated as it is.
        const br = await get('br');
        assert.match(status(br), /fwd=stale; fwd-status=304/);
        assert.equal(br.headers.etag, '"r1-br"');
        assert.ok(brotliDecompressSync(br.body).equals(body(1)));
      } finally {
        await edge.close();
      }
    });
  }

  it('a new 200 replaces every coding, and the Range is answered from the new coding', async () => {
    await start();
    try {
      version = 2;
      const ranged = await get('gzip', { range: 'bytes=0-99' });
      assert.equal(ranged.status, 206);
      assert.match(status(ranged), /fwd=stale; fwd-status=200; stored/);
      assert.equal(ranged.headers['content-encoding'], 'gzip');
      assert.equal(ranged.headers.etag, '"r2-gzip"');
      assert.equal(asked(), 2);
      const identity = await get('identity');
      assert.match(status(identity), /^strata; hit/);
      assert.ok(identity.body.equals(body(2)));
      const gzip = await get('gzip');
      assert.ok(ranged.body.equals(gzip.body.subarray(0, 100)));
      const br = await get('br');
      assert.match(status(br), /^strata; hit/);
      assert.equal(br.headers.etag, '"r2-br"');
      assert.ok(brotliDecompressSync(br.body).equals(body(2)), 'not the coding made from version 1');
      assert.equal(asked(), 2);
    } finally {
      await edge.close();
    }
  });

  it('without Accept-Encoding: the identity entry revalidated, its bytes 0-99 answered', async () => {
    await start();
    try {
      const ranged = await get(undefined, { range: 'bytes=0-99' });
      assert.equal(ranged.status, 206);
      assert.match(status(ranged), /fwd=stale; fwd-status=304/);
      assert.equal(ranged.headers['content-encoding'], undefined);
      assert.equal(ranged.headers['content-range'], `bytes 0-99/${body(1).length}`);
      assert.ok(ranged.body.equals(body(1).subarray(0, 100)));
      const gzip = await get('gzip');
      assert.match(status(gzip), /^strata; hit/);
      assert.equal(asked(), 2);
    } finally {
      await edge.close();
    }
  });
});
