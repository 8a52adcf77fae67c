import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** A product page's path of real length (over 100 characters); each object adds its query. */
const PATH = `/catalogue/2026/winter/${'lightweight-hiking-jacket-'.repeat(3)}product-page.html`;
/** Each record about 6 KB of header fields; the node may keep about 40 of them decoded. */
const BOUND = 256 * 1024;

function etagOf(url: string): string {
  return `"${createHash('sha256').update(url).digest('hex').slice(0, 32)}"`;
}

/** A Content-Security-Policy of real size (about 4 KB) naming the object it was sent with. */
function policyOf(url: string): string {
  const hosts = Array.from({ length: 60 }, (_, i) => `https://static-${i}.cdn.example.com`).join(' ');
  return `default-src 'self'; script-src 'self' ${hosts}; report-uri https://csp.example.com/r?u=${encodeURIComponent(url)}`;
}

const LINK = Array.from(
  { length: 12 },
  (_, i) => `</assets/2026/winter/bundle-${i}.js>; rel=preload; as=script; crossorigin`,
).join(', ');

describe('records kept decoded within their bound, with large header fields', () => {
  let origin: TestOrigin;
  let node: TestNode;
  const bodyOf = (url: string) => Buffer.from(`${url}\n${'<p>jacket</p>'.repeat(60)}\n`);

  before(async () => {
    origin = await startOrigin();
    origin.route(PATH, (req, res) => {
      const url = req.url ?? '';
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'public, max-age=600',
        'content-security-policy': policyOf(url),
        link: LINK,
        etag: etagOf(url),
      });
      res.end(bodyOf(url));
    });
    node = await startNode({ origin: origin.url, decodedBytes: BOUND });
  });

  after(async () => {
    await node.close();
    await origin.close();
  });

  it('answers every hit with its own head and body while records are dropped and decoded again', async () => {
    const urls = Array.from({ length: 150 }, (_, i) => `${PATH}?colour=${i % 7}&size=${i}`);
    for (const url of urls) {
      const miss = await node.get(url);
      assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/, url);
    }
    let most = 0;
    for (let round = 0; round < 3; round++) {
      for (const url of urls) {
        const hit = await node.get(url);
        assert.equal(hit.status, 200);
        assert.match(String(hit.headers['cache-status']), /strata; hit/, url);
        assert.equal(hit.headers.etag, etagOf(url), `${url}: its own ETag`);
        assert.equal(hit.headers['content-security-policy'], policyOf(url), `${url}: its own policy`);
        assert.equal(hit.headers.link, LINK);
        assert.ok(hit.body.equals(bodyOf(url)), `${url}: its own body`);
        most = Math.max(most, node.node.store.decodedBytes);
      }
    }
    assert.ok(most <= BOUND, `decoded records held ${most} bytes, bound ${BOUND}`);
    assert.ok(most > BOUND / 4, 'records were kept decoded up to the bound');
    for (const url of urls) assert.equal(origin.count(url), 1, `${url} fetched once`);
  });
});
