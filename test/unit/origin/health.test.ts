import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  expected,
  HealthChecker,
  type HealthTarget,
  httpProbe,
  type ProbeResult,
} from '../../../src/origin/health.ts';
import { OriginState } from '../../../src/origin/state.ts';
import { startOrigin } from '../../helpers/origin.ts';

const check = { path: '/health', interval: 1000, timeout: 200, healthy: 2, unhealthy: 3, expect: '200-399' };

function checker(results: Record<string, ProbeResult[]>) {
  const seen: Array<[string, string, number | undefined]> = [];
  const health = new HealthChecker({
    onResult: (name, verdict, ms) => seen.push([name, verdict, ms]),
    prober: async (target) => results[target.name]!.shift() ?? { ok: true, ms: 1 },
    random: () => 0.5,
  });
  return { health, seen };
}

const target = (name: string, url = 'http://127.0.0.1:1'): HealthTarget => ({ name, url, check });

describe('active health checks', () => {
  it('marks an origin unhealthy after `unhealthy` failures in a row, healthy again after `healthy` successes', async () => {
    const { health } = checker({
      a: [
        { ok: true, ms: 5 },
        { ok: false },
        { ok: false },
        { ok: true, ms: 5 },
        { ok: false },
        { ok: false },
        { ok: false },
        { ok: true, ms: 4 },
        { ok: true, ms: 4 },
      ],
    });
    health.update([target('a')]);
    const verdicts = [];
    for (let i = 0; i < 9; i++) verdicts.push(await health.probe('a'));
    assert.deepEqual(verdicts, [
      'healthy', // one success is enough for an origin never probed
      'healthy',
      'healthy',
      'healthy', // a success resets the failure count
      'healthy',
      'healthy',
      'unhealthy',
      'unhealthy',
      'healthy',
    ]);
    assert.equal(health.probes('a'), 9);
  });

  it('keeps counters and verdict over an update that keeps the origin, and forgets a changed one', async () => {
    const { health } = checker({ a: [{ ok: false }, { ok: false }, { ok: false }], b: [] });
    health.update([target('a'), target('b')]);
    for (let i = 0; i < 3; i++) await health.probe('a');
    health.update([target('a'), target('b', 'http://127.0.0.1:2')]);
    assert.deepEqual(health.snapshot(), [
      { name: 'a', verdict: 'unhealthy' },
      { name: 'b', verdict: 'unknown' },
    ]);
    health.update([target('b', 'http://127.0.0.1:2')]);
    assert.equal(await health.probe('a'), undefined, 'removed: no longer probed');
  });

  it('brings an origin back from unhealthy into slow start, and takes a passing probe as a latency sample', () => {
    const state = new OriginState({ name: 'a', weight: 1, maxConnections: 10 });
    state.applyProbe('unhealthy', undefined, 100);
    assert.equal(state.usable(100), false);
    state.applyProbe('healthy', 12, 500);
    assert.equal(state.status(500, 1000), 'slow-start');
    assert.equal(state.status(1500, 1000), 'healthy');
    assert.equal(state.latency.value, 12);
  });

  it('reads expect as a status or a range', () => {
    assert.equal(expected(204, '200-399'), true);
    assert.equal(expected(404, '200-399'), false);
    assert.equal(expected(200, '200'), true);
    assert.equal(expected(201, '200'), false);
  });

  it('probes the path on the origin itself, a path starting with // included', async () => {
    const origin = await startOrigin({
      '//health': (_req, res) => {
        res.writeHead(204);
        res.end();
      },
    });
    try {
      // new URL('//health', origin) is http://health/: a probe of another host, failing on DNS.
      const result = await httpProbe({
        ...target('a', origin.url),
        check: { ...check, path: '//health', timeout: 1000 },
      });
      assert.equal(result.ok, true);
      assert.deepEqual(
        origin.requests.map((r) => r.path),
        ['//health'],
      );
    } finally {
      await origin.close();
    }
  });
});
