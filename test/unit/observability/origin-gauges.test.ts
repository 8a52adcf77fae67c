/**
 * The origin gauges summed over processes (`--workers`: the primary adds up every worker's
 * metrics with prom-client's cluster aggregation): requests in flight add up, a state or an
 * estimate does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregatorRegistry } from 'prom-client';
import { createMetrics, type OriginGaugeSource } from '../../../src/observability/metrics.ts';

async function processWith(origins: OriginGaugeSource[]) {
  const metrics = createMetrics();
  metrics.setOriginSource(() => origins);
  return metrics.registry.getMetricsAsJSON();
}

describe('origin gauges over several processes', () => {
  it('shows the worst state, the mean estimate and the sum of requests in flight', async () => {
    const workers = await Promise.all([
      processWith([
        { name: 'a', latency: 10, pending: 2, state: 2 },
        { name: 'b', latency: 30, pending: 1, state: 0 },
      ]),
      processWith([
        { name: 'a', latency: 20, pending: 3, state: 2 },
        { name: 'b', latency: 10, pending: 0, state: 1 },
      ]),
    ]);
    const text = await AggregatorRegistry.aggregate(workers).metrics();
    const value = (metric: string, origin: string) =>
      Number(text.match(new RegExp(`^${metric}\\{origin="${origin}"\\} (\\S+)$`, 'm'))?.[1]);
    assert.equal(
      value('strata_origin_state', 'a'),
      2,
      'ejected in both workers is ejected (2), not 4 (draining)',
    );
    assert.equal(value('strata_origin_state', 'b'), 1, 'slow start in one worker');
    assert.equal(value('strata_origin_latency_ewma_seconds', 'a'), 0.015);
    assert.equal(value('strata_origin_latency_ewma_seconds', 'b'), 0.02);
    assert.equal(value('strata_origin_pending_requests', 'a'), 5);
    assert.equal(value('strata_origin_pending_requests', 'b'), 1);
  });
});
