import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const TELLTALE = {
  server: 'Apache/2.4.58 (Ubuntu)',
  'x-powered-by': 'PHP/8.3.1',
  'x-aspnet-version': '4.0.30319',
  'x-backend-host': 'app-07.internal',
};
const LONG = `/catalog/${'h'.repeat(70)}/${'i'.repeat(40)}/list.html`;

describe('hiding the origin', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/cached': respond(200, { ...TELLTALE, 'cache-control': 'max-age=60', 'x-kept': 'yes' }, 'cached'),
      [LONG]: respond(200, { ...TELLTALE, 'cache-control': 'max-age=60' }, 'long'),
      '/private': respond(200, { ...TELLTALE, 'cache-control': 'no-store' }, 'private'),
    });
    edge = await startNode({
      origin: origin.url,
      config: {
        proxy: { hideResponseHeaders: ['Server', 'X-Powered-By', 'X-AspNet-Version', 'X-Backend-Host'] },
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const path of ['/cached', LONG, '/private']) {
    it(`strips Server, X-Powered-By and the configured fields on the miss and the next answer (${path.slice(0, 30)})`, async () => {
      for (let i = 0; i < 2; i++) {
        const res = await edge.get(path);
        assert.equal(res.status, 200);
        for (const name of Object.keys(TELLTALE))
          assert.equal(res.headers[name], undefined, `${name} on answer ${i + 1}`);
      }
    });
  }

  it('keeps every other field, and the hit comes from cache', async () => {
    const hit = await edge.get('/cached');
    assert.equal(hit.headers['x-kept'], 'yes');
    assert.match(String(hit.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count('/cached'), 1);
    assert.equal(origin.count('/private'), 2);
  });
});

describe('hiding the origin by default', () => {
  it('strips Server and X-Powered-By with no configuration', async () => {
    const origin = await startOrigin({
      '/p': respond(200, { ...TELLTALE, 'cache-control': 'max-age=60' }, 'p'),
    });
    const edge = await startNode({ origin: origin.url });
    try {
      const res = await edge.get('/p');
      assert.equal(res.headers.server, undefined);
      assert.equal(res.headers['x-powered-by'], undefined);
      assert.equal(res.headers['x-backend-host'], 'app-07.internal', 'not in the default list');
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
