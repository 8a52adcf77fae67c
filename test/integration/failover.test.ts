import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/catalogue/${'x'.repeat(70)}/item-${'7'.repeat(30)}.json?lang=en&ref=${'r'.repeat(20)}`;

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function counted(metrics: string, origin: string, outcome: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`strata_origin_requests_total{origin="${origin}",outcome="${outcome}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('failover between origins', () => {
  let live: TestOrigin;
  let edge: TestNode;
  let deadPort: number;

  before(async () => {
    live = await startOrigin();
    deadPort = await closedPort();
    const deadUrl = `http://127.0.0.1:${deadPort}`;
    edge = await startNode({
      origin: live.url,
      config: {
        origins: [
          { name: 'dead', url: deadUrl, hostHeader: 'dead.example', connectTimeout: 2000 },
          { name: 'live', url: live.url, hostHeader: 'live.example', connectTimeout: 2000 },
          { name: 'dead-too', url: deadUrl, hostHeader: 'dead-too.example', connectTimeout: 2000 },
          { name: 'dead-last', url: deadUrl, connectTimeout: 2000 },
        ],
        sites: [
          { name: 'failover', hosts: ['failover.test'], origins: ['dead', 'live'] },
          { name: 'down', hosts: ['down.test'], origins: ['dead-too', 'dead-last'] },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await live.close();
  });

  for (const [index, path] of ['/a', LONG].entries()) {
    it(`sends the Host of the origin that answers, not the first one's (${path.length} characters)`, async () => {
      live.route(path.split('?')[0]!, (req, res) => {
        res.writeHead(req.headers.host === 'live.example' ? 200 : 421, { 'cache-control': 'max-age=60' });
        res.end(`host=${req.headers.host}`);
      });
      const before = await edge.node.metrics.registry.metrics();
      const res = await edge.get(path, { headers: { host: 'failover.test' } });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'host=live.example');
      assert.equal(live.count(path), 1);
      assert.equal(live.requests.at(-1)!.headers.host, 'live.example');
      const after = await edge.node.metrics.registry.metrics();
      // Once refused, the dead origin costs more than the live one: the next request goes to live first.
      assert.equal(
        counted(after, 'dead', 'EDGE_ERR_ORIGIN_CONNECT') -
          counted(before, 'dead', 'EDGE_ERR_ORIGIN_CONNECT'),
        index === 0 ? 1 : 0,
      );
      assert.equal(counted(after, 'live', '2xx') - counted(before, 'live', '2xx'), 1);
      const hit = await edge.get(path, { headers: { host: 'failover.test' } });
      assert.match(String(hit.headers['cache-status']), /^strata; hit/);
      assert.equal(live.count(path), 1);
    });
  }

  it('blames each origin it tried when all fail, and names no address in the client body', async () => {
    const before = await edge.node.metrics.registry.metrics();
    const res = await edge.get(LONG, { headers: { host: 'down.test' } });
    assert.equal(res.status, 502);
    assert.match(res.text, /^502 /);
    assert.doesNotMatch(res.text, /127\.0\.0\.1|ECONNREFUSED|:\d{2,5}\b/, `body was: ${res.text}`);
    assert.doesNotMatch(res.text, new RegExp(String(deadPort)));
    assert.match(String(res.headers['proxy-status']), /error=connection_refused; details="dead-last"/);
    const after = await edge.node.metrics.registry.metrics();
    for (const name of ['dead-too', 'dead-last']) {
      const delta =
        counted(after, name, 'EDGE_ERR_ORIGIN_CONNECT') - counted(before, name, 'EDGE_ERR_ORIGIN_CONNECT');
      assert.equal(delta, 1, name);
    }
    assert.equal(
      counted(after, 'dead', 'EDGE_ERR_ORIGIN_CONNECT'),
      counted(before, 'dead', 'EDGE_ERR_ORIGIN_CONNECT'),
    );
  });
});
