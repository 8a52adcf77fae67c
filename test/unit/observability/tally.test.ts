import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterTallies, TallyHistogram } from '../../../src/observability/tally.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0.0004, 0.001, 0.002, 0.05, 0.05, 0.7, 3, 0];

describe('tallies', () => {
  it('render the same histogram series as prom-client for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const tally = new TallyHistogram({
      name: 'x_seconds',
      help: 'h',
      label: 'cache',
      buckets: BUCKETS,
      registry: ours,
    });
    const histogram = new Histogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: ['cache'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    for (const [i, value] of SAMPLES.entries()) {
      const cache = i % 3 === 0 ? 'hit' : 'miss';
      tally.labels(cache).observe(value);
      histogram.labels(cache).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    ours.resetMetrics();
    assert.match(await ours.metrics(), /x_seconds_count\{cache="hit"\} 0/);
  });

  it('pass counts to their counter when it is read, each count once', async () => {
    const registry = new Registry();
    const tallies = new CounterTallies();
    const counter = new Counter({
      name: 'y_total',
      help: 'h',
      labelNames: ['site', 'status'],
      registers: [registry],
      collect: () => tallies.flush(),
    });
    tallies.attach(counter);
    const ok = tallies.get('shop 2xx', ['shop', '2xx']);
    ok.inc();
    ok.inc(4);
    assert.match(await registry.metrics(), /y_total\{site="shop",status="2xx"\} 5/);
    ok.inc();
    assert.match(await registry.metrics(), /y_total\{site="shop",status="2xx"\} 6/);
    assert.match(await registry.metrics(), /y_total\{site="shop",status="2xx"\} 6/);
  });
});
