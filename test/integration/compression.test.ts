import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClock } from '../helpers/clock.ts';
import { startNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/assets/application/${'bundle-segment/'.repeat(8)}release-notes.txt?build=2026-12-02&locale=en-GB`;

describe('Accept-Encoding negotiation', () => {
  let origin: TestOrigin;
  const clock = createClock();

  before(async () => {
    const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      res.writeHead(200, {
        'cache-control': 'max-age=3600',
        'content-type': 'text/plain',
        vary: 'Accept-Encoding',
      });
      res.end(`asked=${req.headers['accept-encoding'] ?? '(none)'}`);
    };
    origin = await startOrigin({ '/negotiated': echo, [LONG.split('?')[0]!]: echo });
  });
  after(() => origin.close());

  for (const path of ['/negotiated', LONG]) {
    it(`shares one variant and one origin fetch between spellings of the same bucket (${path.length} chars)`, async () => {
      const edge = await startNode({ origin: origin.url, now: clock.now });
      try {
        const before = origin.count(path);
        const first = await edge.get(path, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
        assert.equal(first.status, 200);
        assert.equal(first.text, 'asked=br');
        assert.match(String(first.headers['cache-status']), /fwd=miss/);
        for (const value of ['gzip, br', 'BR', 'br;q=0.9, gzip;q=0.8', 'x-gzip, br']) {
          const again = await edge.get(path, { headers: { 'accept-encoding': value } });
          assert.equal(again.text, 'asked=br', value);
          assert.match(String(again.headers['cache-status']), /^strata; hit/, value);
        }
        assert.equal(origin.count(path) - before, 1);
      } finally {
        await edge.close();
      }
    });
  }

  it('asks the origin for the bucket only, so a client that weighs gzip higher never gets br', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/negotiated');
      const gzip = await edge.get('/negotiated', { headers: { 'accept-encoding': 'br;q=0.5, gzip' } });
      assert.equal(gzip.text, 'asked=gzip');
      const plain = await edge.get('/negotiated');
      assert.equal(plain.text, 'asked=identity');
      const empty = await edge.get('/negotiated', { headers: { 'accept-encoding': 'deflate' } });
      assert.equal(empty.text, 'asked=identity');
      assert.match(String(empty.headers['cache-status']), /^strata; hit/);
      assert.equal(origin.count('/negotiated') - before, 2);
      const seen = origin.requests
        .filter((r) => r.path === '/negotiated')
        .map((r) => r.headers['accept-encoding']);
      assert.deepEqual(seen.slice(-2), ['gzip', 'identity']);
    } finally {
      await edge.close();
    }
  });

  it('forwards a field no bucket satisfies as it came, as a variant of its own', async () => {
    const edge = await startNode({ origin: origin.url, now: clock.now });
    try {
      const before = origin.count('/negotiated');
      const none = await edge.get('/negotiated', { headers: { 'accept-encoding': 'deflate, identity;q=0' } });
      assert.equal(none.text, 'asked=deflate, identity;q=0');
      const plain = await edge.get('/negotiated', { headers: { 'accept-encoding': 'identity' } });
      assert.equal(plain.text, 'asked=identity');
      assert.equal(origin.count('/negotiated') - before, 2);
    } finally {
      await edge.close();
    }
  });
});
