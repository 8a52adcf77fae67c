import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createConnection, createServer as createTcpServer } from 'node:net';
import { describe, it } from 'node:test';
import {
  expected,
  HealthChecker,
  type HealthTarget,
  httpProbe,
  type ProbeResult,
} from '../../../src/origin/health.ts';
import { OriginState } from '../../../src/origin/state.ts';
import { createFixtures } from '../../helpers/certs.ts';
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

  it('samples the time to headers on a ready connection: an https probe leaves its handshake out', async () => {
    const fixtures = createFixtures();
    const leaf = fixtures.leaf('origin', ['origin.test']);
    const origin = createHttpsServer(
      { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) },
      (_req, res) => {
        res.writeHead(200);
        res.end('ok');
      },
    );
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    // In front of it, a link whose handshake takes 300 ms (the first bytes from the prober, its
    // ClientHello, are held that long); the request after it is answered at once.
    const link = createTcpServer((socket) => {
      const upstream = createConnection((origin.address() as AddressInfo).port, '127.0.0.1');
      let first = true;
      socket.on('data', (chunk) => {
        if (!first) return void upstream.write(chunk);
        first = false;
        socket.pause();
        setTimeout(() => {
          upstream.write(chunk);
          socket.resume();
        }, 300);
      });
      upstream.pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => link.listen(0, '127.0.0.1', resolve));
    try {
      const started = performance.now();
      const result = await httpProbe({
        name: 'tls',
        url: `https://127.0.0.1:${(link.address() as AddressInfo).port}`,
        tls: { ca: readFileSync(fixtures.caFile), servername: 'origin.test', minVersion: 'TLSv1.2' },
        check: { ...check, timeout: 5000 },
      });
      assert.equal(result.ok, true);
      assert.ok(performance.now() - started >= 300, 'the handshake took its 300 ms');
      assert.ok(result.ms! < 200, `sample ${result.ms} ms: the handshake is no answer time`);
    } finally {
      link.close();
      origin.closeAllConnections();
      origin.close();
      fixtures.remove();
    }
  });
});
