/**
 * Per-site compression settings: a site's encodings, minSize, types and levels replace the
 * node's for its responses only; another site keeps the node's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const page = Buffer.from('<tr><td>a row of a long report table, repeated</td><td>42</td></tr>\n'.repeat(120));
const LONG = `/reports/2026/q4/${'regional-breakdown/'.repeat(5)}summary.html?format=full&currency=eur`;
const served = (type: string) =>
  respond(
    200,
    { 'cache-control': 'max-age=60', 'content-type': type, 'content-length': String(page.length) },
    page,
  );
const BR_GZIP = { 'accept-encoding': 'gzip, br' };

describe('compression: per-site settings', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      [LONG.split('?')[0]!]: served('text/html'),
      '/custom': served('application/x-report'),
    });
    edge = await startNode({
      origin: origin.url,
      config: {
        origins: [{ name: 'origin', url: origin.url }],
        sites: [
          {
            name: 'reports',
            hosts: ['reports.test'],
            origins: ['origin'],
            compression: { encodings: ['gzip'], types: ['application/x-report'], levels: { gzip: 9 } },
          },
          {
            name: 'small-only',
            hosts: ['small.test'],
            origins: ['origin'],
            compression: { minSize: '64KiB' },
          },
          { name: 'www', hosts: ['*'], origins: ['origin'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it("makes only the site's encodings, at the site's level, for a client that takes more", async () => {
    const res = await edge.get(LONG, { headers: { ...BR_GZIP, host: 'reports.test' } });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.ok(res.body.equals(gzipSync(page, { level: 9 })), 'gzip at level 9');
    const other = await edge.get(LONG, { headers: { ...BR_GZIP, host: 'www.test' } });
    assert.equal(other.headers['content-encoding'], 'br');
    assert.ok(brotliDecompressSync(other.body).equals(page));
  });

  it("compresses the site's own types, and only on that site", async () => {
    const res = await edge.get('/custom', { headers: { ...BR_GZIP, host: 'reports.test' } });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(res.body).equals(page));
    const other = await edge.get('/custom', { headers: { ...BR_GZIP, host: 'www.test' } });
    assert.equal(other.headers['content-encoding'], undefined);
    assert.ok(other.body.equals(page));
  });

  it("leaves bodies under the site's minSize as they are", async () => {
    const res = await edge.get(LONG, { headers: { ...BR_GZIP, host: 'small.test' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.ok(res.body.equals(page));
  });
});
