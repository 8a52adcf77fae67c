import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';
import { type AdminNode, startAdminNode } from './purge-support.ts';

describe('active health checks in a single process', () => {
  let near: TestOrigin;
  let far: TestOrigin;
  let edge: AdminNode;
  let nearHealthy = true;

  before(async () => {
    near = await startOrigin({
      '/health': (_req, res) => {
        res.writeHead(nearHealthy ? 200 : 503);
        res.end();
      },
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('near');
      },
    });
    // Its probes answer as slowly as its pages, so probes alone rank it behind near, however
    // loaded the machine.
    far = await startOrigin({
      '/health': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200);
          res.end();
        }, 150);
      },
      '/page': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'no-store' });
          res.end('far');
        }, 150);
      },
    });
    edge = await startAdminNode({
      origin: near.url,
      config: {
        origins: [
          { name: 'near', url: near.url },
          { name: 'far', url: far.url },
        ],
        sites: [
          {
            name: 'checked',
            hosts: ['*'],
            origins: ['near', 'far'],
            slowStart: 0,
            healthCheck: { path: '/health', interval: 40, timeout: 500, healthy: 2, unhealthy: 2 },
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([near.close(), far.close()]);
  });

  const probes = (origin: TestOrigin) => origin.requests.filter((r) => r.path === '/health').length;
  const stats = async () => JSON.parse((await edge.call('GET', '/stats')).text).sites[0];

  it('probes each origin, sends traffic to the near one, and takes it out when its check fails', async () => {
    assert.ok(await until(() => probes(near) >= 1 && probes(far) >= 1, 2000), 'both origins probed');
    // Probes rank far behind near (150 ms against ~1); the first page answers confirm it.
    const warm = [];
    for (let i = 0; i < 5; i++) warm.push((await edge.get(`/page?warm=${i}`)).text);
    assert.deepEqual(warm.slice(2), ['near', 'near', 'near']);
    nearHealthy = false;
    assert.ok(
      await until(async () => (await stats()).origins[0].state === 'unhealthy', 3000),
      'marked unhealthy',
    );
    const before = near.count('/page');
    for (let i = 0; i < 5; i++) assert.equal((await edge.get(`/page?out=${i}`)).text, 'far');
    assert.equal(
      near.requests.filter((r) => r.path.startsWith('/page?out=')).length,
      0,
      'no request to an unhealthy origin',
    );
    assert.equal(near.count('/page'), before);
    const view = await stats();
    assert.equal(view.origins[0].healthCheck, 'unhealthy');
    const metrics = (await edge.call('GET', '/metrics')).text;
    assert.match(metrics, /^strata_origin_state\{origin="near"\} 3$/m, 'unhealthy is 3');
    assert.match(metrics, /^strata_origin_state\{origin="far"\} 0$/m);
    assert.match(metrics, /^strata_origin_pending_requests\{origin="far"\} 0$/m);
    assert.match(metrics, /^strata_origin_latency_ewma_seconds\{origin="far"\} 0\.\d+/m);
    assert.deepEqual(
      view.order.map((o: { origin: string }) => o.origin),
      ['far', 'near'],
      '/stats shows the order a request would try them in',
    );
  });

  it('brings the origin back after `healthy` passing probes', async () => {
    nearHealthy = true;
    assert.ok(await until(async () => (await stats()).origins[0].state === 'healthy', 3000), 'healthy again');
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await edge.get(`/page?back=${i}`)).text);
    assert.ok(answers.includes('near'), answers.join(','));
    assert.equal(answers.at(-1), 'near');
  });
});

describe('a health check removed by a reload', () => {
  let checked: TestOrigin;
  let other: TestOrigin;
  let edge: AdminNode;
  const site = (healthCheck?: Record<string, unknown>) => ({
    name: 'checked',
    hosts: ['*'],
    origins: ['checked', 'other'],
    slowStart: 0,
    ...(healthCheck ? { healthCheck } : {}),
  });

  before(async () => {
    // The probe path is wrong (404): the origin serves pages but fails its check.
    checked = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('checked');
      },
    });
    // Its probes answer as slowly as its pages, so its estimate never reads below the checked
    // origin's own answers, however loaded the machine.
    other = await startOrigin({
      '/health': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200);
          res.end();
        }, 100);
      },
      '/page': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'no-store' });
          res.end('other');
        }, 100);
      },
    });
    edge = await startAdminNode({
      origin: checked.url,
      config: {
        origins: [
          { name: 'checked', url: checked.url },
          { name: 'other', url: other.url },
        ],
        sites: [site({ path: '/health', interval: 20, timeout: 500, unhealthy: 2 })],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([checked.close(), other.close()]);
  });

  const stats = async () => JSON.parse((await edge.call('GET', '/stats')).text).sites[0];

  it('no longer keeps the origin its failed probes took out: it is usable again at once', async () => {
    assert.ok(
      await until(async () => (await stats()).origins[0].state === 'unhealthy', 3000),
      'marked unhealthy',
    );
    const next = validateConfig({
      ...edge.node.config,
      sites: [site()],
    });
    assert.ok('config' in next, JSON.stringify(next));
    edge.node.reloadSites(next.config);
    const view = await stats();
    assert.equal(view.origins[0].state, 'healthy', 'no check, no verdict');
    const metrics = (await edge.call('GET', '/metrics')).text;
    assert.match(metrics, /^strata_origin_state\{origin="checked"\} 0$/m);
    // The cheaper origin, no longer held out, takes the traffic again.
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await edge.get(`/page?reloaded=${i}`)).text);
    assert.equal(answers.at(-1), 'checked', answers.join(','));
  });
});

describe('the strata_origin_state gauge', () => {
  let flaky: TestOrigin;
  let steady: TestOrigin;
  let edge: AdminNode;
  let flakyHealthy = false;
  const page = (name: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'cache-control': 'no-store' });
    res.end(name);
  };

  before(async () => {
    flaky = await startOrigin({
      '/health': (_req, res) => {
        res.writeHead(flakyHealthy ? 200 : 503);
        res.end();
      },
      '/page': page('flaky'),
    });
    steady = await startOrigin({ '/health': page('ok'), '/page': page('steady') });
    edge = await startAdminNode({
      origin: steady.url,
      config: {
        origins: [
          { name: 'flaky', url: flaky.url },
          { name: 'steady', url: steady.url },
        ],
        sites: [
          {
            name: 'checked',
            hosts: ['*'],
            origins: ['flaky', 'steady'],
            slowStart: 60_000,
            healthCheck: { path: '/health', interval: 30, timeout: 500, healthy: 1, unhealthy: 1 },
          },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([flaky.close(), steady.close()]);
  });

  const stats = async () => JSON.parse((await edge.call('GET', '/stats')).text).sites[0];
  const state = async (origin: string) => {
    const metrics = (await edge.call('GET', '/metrics')).text;
    return metrics.match(new RegExp(`^strata_origin_state\\{origin="${origin}"\\} (\\d+)$`, 'm'))?.[1];
  };

  it('reads 1 while a recovered origin is in slow start, as /stats says', async () => {
    assert.ok(
      await until(async () => (await stats()).origins[0].state === 'unhealthy', 3000),
      'marked unhealthy',
    );
    assert.equal(await state('flaky'), '3');
    flakyHealthy = true;
    assert.ok(
      await until(async () => (await stats()).origins[0].state === 'slow-start', 3000),
      'back, in slow start (60 s)',
    );
    assert.equal(await state('flaky'), '1', 'slow-start is 1');
    assert.equal(await state('steady'), '0');
  });

  it('reads 4 for an origin a reload removed, while it drains', async () => {
    const next = validateConfig({
      ...edge.node.config,
      origins: [{ name: 'steady', url: steady.url }],
      sites: [{ name: 'checked', hosts: ['*'], origins: ['steady'] }],
    });
    assert.ok('config' in next, JSON.stringify(next));
    edge.node.reloadSites(next.config);
    assert.equal((await edge.get('/page?after-reload')).text, 'steady');
    assert.equal(await state('flaky'), '4', 'draining is 4');
    assert.equal(await state('steady'), '0');
  });
});

describe('a health check changed by a reload', () => {
  let down: TestOrigin;
  let other: TestOrigin;
  let edge: AdminNode;
  const site = (healthCheck: Record<string, unknown>) => ({
    name: 'checked',
    hosts: ['*'],
    origins: ['down', 'other'],
    slowStart: 0,
    healthCheck,
  });

  before(async () => {
    // Serves pages fast, but its check fails (no /health: 404).
    down = await startOrigin({
      '/page': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('down');
      },
    });
    other = await startOrigin({
      '/health': (_req, res) => {
        res.writeHead(200);
        res.end();
      },
      '/page': (_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'cache-control': 'no-store' });
          res.end('other');
        }, 50);
      },
    });
    edge = await startAdminNode({
      origin: other.url,
      config: {
        origins: [
          { name: 'down', url: down.url },
          { name: 'other', url: other.url },
        ],
        sites: [site({ path: '/health', interval: 20, timeout: 500, unhealthy: 2 })],
      },
    });
  });
  after(async () => {
    await edge.close();
    await Promise.all([down.close(), other.close()]);
  });

  const stats = async () => JSON.parse((await edge.call('GET', '/stats')).text).sites[0];
  const probes = () => down.requests.filter((r) => r.path === '/health').length;

  it('keeps an unhealthy origin out until the new check decides: its first failure is no verdict', async () => {
    assert.ok(
      await until(async () => (await stats()).origins[0].state === 'unhealthy', 3000),
      'marked unhealthy',
    );
    const next = validateConfig({
      ...edge.node.config,
      sites: [site({ path: '/health', interval: 40, timeout: 500, unhealthy: 5 })],
    });
    assert.ok('config' in next, JSON.stringify(next));
    edge.node.reloadSites(next.config);
    const seen = probes();
    assert.ok(await until(() => probes() >= seen + 2, 3000), 'the new check probed (and failed) twice');
    assert.equal((await stats()).origins[0].state, 'unhealthy', 'still out: two failures of five');
    for (let i = 0; i < 4; i++) assert.equal((await edge.get(`/page?changed=${i}`)).text, 'other');
    assert.equal(down.count('/page'), 0, 'no request to the origin its check takes out');
  });
});
