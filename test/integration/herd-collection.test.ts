/**
 * A herd's collection (src/cache/scavenger.ts, HerdCollector): once HERD_FOLLOWERS requests wait
 * for one leader whose origin has not answered, the node runs the collector while they wait, not
 * while they are answered. The origin here holds its answer until it sees a collection forced
 * in this process (the node runs in it), then every client gets the one response. A herd behind
 * a revalidation no longer counts as waiting once the origin's 304 is in, while its refresh is
 * committed (no collection between the answer and the followers).
 */
import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { HERD_FOLLOWERS } from '../../src/cache/collapse.ts';
import { createClock } from '../helpers/clock.ts';
import { request } from '../helpers/http.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const STALE = `/programme/${'festival-weekend/'.repeat(6)}schedule.html?day=saturday&stage=main&lang=en`;
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

  const clock = createClock();
  /** Whether the herd still waited when the node began committing a 304's refresh. */
  let waitingAtRefresh: boolean | undefined;
  /** The herds the collapse table told of (test runs replace the collector to watch them). */
  const herds: Array<() => boolean> = [];

  before(async () => {
    origin = await startOrigin({
      [STALE.split('?')[0]!]: async (req, res, hit) => {
        if (hit === 1) {
          res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"sat-v1"' });
          return void res.end('saturday, main stage');
        }
        assert.equal(req.headers['if-none-match'], '"sat-v1"');
        await until(() => herds.length > 0, 10_000);
        // The origin has not answered: the herd waits on it.
        assert.equal(herds[0]!(), true);
        res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"sat-v1"' });
        res.end();
      },
      [LONG.split('?')[0]!]: async (_req, res) => {
        // Bounded: without a herd's collection the test fails on the assertion below.
        await until(() => edge.node.edge.collapse.waiters >= CLIENTS - 1, 10_000);
        await until(() => forced.length > 0, 3_000);
        answered = true;
        res.writeHead(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=600' });
        res.end(body);
      },
    });
    edge = await startNode({ origin: origin.url, now: clock.now });
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

  it("counts a herd revalidating a stale entry as no longer waiting once the origin's 304 is in", async () => {
    assert.equal((await edge.get(STALE)).status, 200);
    await edge.node.idle();
    clock.advance(120);
    const collapse = edge.node.edge.collapse;
    const collector = collapse.onHerd;
    collapse.onHerd = (stillWaiting) => herds.push(stillWaiting);
    const store = edge.node.edge.store;
    const refresh = store.refresh.bind(store);
    store.refresh = (...args) => {
      waitingAtRefresh = herds[0]?.();
      return refresh(...args);
    };
    try {
      const responses = await Promise.all(
        Array.from({ length: CLIENTS }, () => request(`${edge.url}${STALE}`)),
      );
      for (const response of responses) {
        assert.equal(response.status, 200);
        assert.equal(response.body.toString(), 'saturday, main stage');
      }
      assert.equal(origin.count(STALE), 2);
      assert.equal(herds.length, 1);
      assert.equal(waitingAtRefresh, false, 'the refresh being committed: the origin had answered');
    } finally {
      collapse.onHerd = collector;
      store.refresh = refresh;
    }
  });
});
