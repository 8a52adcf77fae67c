/**
 * A herd's collection (src/cache/scavenger.ts, HerdCollector): once HERD_FOLLOWERS requests wait
 * for one leader whose origin has not answered, the node runs the collector while they wait, not
 * while they are answered. The origin here holds its answer until it sees a collection forced
 * in this process (the node runs in it), then every client gets the one response.
 */
import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { HERD_FOLLOWERS } from '../../src/cache/collapse.ts';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const LONG = `/launch/${'spring-edition/'.repeat(7)}trailer-poster.webp?campaign=newsletter&w=1280&dpr=2`;
const CLIENTS = HERD_FOLLOWERS + 36;
const body = Buffer.alloc(3000);
for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 256;

describe('a herd collected while its origin answer is awaited', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  /** Forced collections seen, and whether the origin had answered at the time. */
  const forced: Array<{ answered: boolean }> = [];
  let answered = false;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const flags = (entry as unknown as { detail: { flags: number } }).detail.flags;
      if (flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) forced.push({ answered });
    }
  });

  before(async () => {
    origin = await startOrigin({
      [LONG.split('?')[0]!]: async (_req, res) => {
        // Bounded: without a herd's collection the test fails on the assertion below.
        await until(() => edge.node.edge.collapse.waiters >= CLIENTS - 1, 10_000);
        await until(() => forced.length > 0, 3_000);
        answered = true;
        res.writeHead(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=600' });
        res.end(body);
      },
    });
    edge = await startNode({ origin: origin.url });
    observer.observe({ entryTypes: ['gc'] });
  });
  after(async () => {
    observer.disconnect();
    await edge.close();
    await origin.close();
  });

  it('collects while the clients wait, and answers all of them from one origin request', async () => {
    const responses = await Promise.all(Array.from({ length: CLIENTS }, () => request(`${edge.url}${LONG}`)));
    assert.ok(
      forced.some((f) => !f.answered),
      'a collection forced while the origin held its answer',
    );
    assert.equal(origin.count(LONG), 1);
    const statuses = responses.map((r) => String(r.headers['cache-status']));
    assert.equal(statuses.filter((s) => s === 'strata; fwd=miss; collapsed').length, CLIENTS - 1);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.body.equals(body));
    }
    await edge.node.idle();
    assert.match(String((await edge.get(LONG)).headers['cache-status']), /^strata; hit; ttl=/);
  });
});
