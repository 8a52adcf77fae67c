import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backupOrigins } from '../../../src/config/backups.ts';
import { validateConfig } from '../../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-config-origins-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  origins: [
    { name: 'us-1', url: 'http://127.0.0.1:1', region: 'us' },
    { name: 'eu-1', url: 'http://127.0.0.1:2', region: 'eu', weight: 2, maxConnections: 50 },
  ],
  sites: [{ name: 's', hosts: ['*'], origins: ['us-1', 'eu-1'] }],
};

function problems(raw: unknown): Record<string, string> {
  const result = validateConfig(raw);
  assert.ok('problems' in result, 'expected the config to be refused');
  return Object.fromEntries(result.problems.map((p) => [p.path, p.message]));
}

describe('origin selection configuration', () => {
  it('defaults a site to latency selection preferring the node region, with a 20% + 10/s retry budget', () => {
    const result = validateConfig(base);
    assert.ok('config' in result);
    const site = result.config.sites[0]!;
    assert.equal(site.selection, 'latency');
    assert.equal(site.prefer, 'node-region');
    assert.deepEqual(site.retry, { attempts: 3, budgetPercent: 20, minPerSecond: 10 });
    assert.equal(site.outlier.consecutiveFailures, 5);
    assert.equal(site.healthCheck, undefined);
    assert.equal(result.config.origins[1]!.weight, 2);
    assert.equal(result.config.origins[0]!.weight, 1);
  });

  it('reads health checks, geo networks and the node region', () => {
    const result = validateConfig({
      ...base,
      node: { region: 'us' },
      geo: { networks: [{ cidr: '127.0.0.2/32', region: 'eu' }] },
      sites: [
        { ...base.sites[0], prefer: 'client-region', healthCheck: { path: '/health', interval: '2s' } },
      ],
    });
    assert.ok('config' in result, JSON.stringify(result));
    assert.equal(result.config.sites[0]!.healthCheck!.interval, 2000);
    assert.equal(result.config.sites[0]!.healthCheck!.expect, '200-399');
    assert.equal(result.config.node.region, 'us');
  });

  it('names a region no origin is in, a bad CIDR, an unknown backup and client-region without geo', () => {
    const found = problems({
      ...base,
      geo: {
        networks: [
          { cidr: '10.0.0.0/8', region: 'asia' },
          { cidr: '10.0.0.300/8', region: 'us' },
          { cidr: '10.0.0.1', region: 'us' },
        ],
      },
      sites: [{ ...base.sites[0], backup: ['nowhere'], prefer: 'client-region' }],
    });
    assert.match(found['geo.networks[0].region']!, /no origin is in region "asia" \(regions: eu, us\)/);
    assert.match(found['geo.networks[1].cidr']!, /CIDR/);
    assert.match(found['geo.networks[2].cidr']!, /CIDR/);
    assert.match(found['sites[0].backup[0]']!, /no origin or site named "nowhere"/);
    assert.equal(found['sites[0].prefer'], undefined, 'geo.networks is set, even if partly wrong');
    const noGeo = problems({ ...base, sites: [{ ...base.sites[0], prefer: 'client-region' }] });
    assert.match(noGeo['sites[0].prefer']!, /needs geo.networks or geo.database/);
  });

  it('takes a site as a backup, standing for its origins, and refuses a site as its own backup', () => {
    const config = {
      origins: [
        ...base.origins,
        { name: 'dr-1', url: 'http://127.0.0.1:3' },
        { name: 'dr-2', url: 'http://127.0.0.1:4' },
      ],
      sites: [
        { name: 'shop', hosts: ['shop.example'], origins: ['us-1'], backup: ['eu-1', 'dr'] },
        { name: 'dr', hosts: ['dr.example'], origins: ['dr-1', 'dr-2', 'us-1'] },
      ],
    };
    const result = validateConfig(config);
    assert.ok('config' in result, JSON.stringify(result));
    const [shop] = result.config.sites;
    // Each origin once, never one of the site's own.
    assert.deepEqual(backupOrigins(result.config, shop!), ['eu-1', 'dr-1', 'dr-2']);
    const self = problems({ ...config, sites: [{ ...config.sites[0], backup: ['shop'] }, config.sites[1]] });
    assert.match(self['sites[0].backup[0]']!, /cannot be its own backup/);
  });

  it('refuses an unreadable MMDB file and a file that is not one, at check time', () => {
    const missing = problems({ ...base, geo: { database: join(dir, 'missing.mmdb') } });
    assert.match(missing['geo.database']!, /cannot read .*missing\.mmdb/);
    const text = join(dir, 'text.mmdb');
    writeFileSync(text, 'not a database');
    const wrong = problems({ ...base, geo: { database: text } });
    assert.match(wrong['geo.database']!, /is not a MaxMind DB file/);
  });

  it('refuses a weight of zero, an unknown selection and a bad health expectation', () => {
    const found = problems({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1', weight: 0 }],
      sites: [
        { name: 's', hosts: ['*'], origins: ['o'], selection: 'random', healthCheck: { expect: '2xx' } },
      ],
    });
    assert.ok(found['origins[0].weight']);
    assert.ok(found['sites[0].selection']);
    assert.match(found['sites[0].healthCheck.expect']!, /200-399/);
  });

  it('refuses a health check that would probe without pause, fail every probe, or expect no status', () => {
    const site = (healthCheck: Record<string, unknown>) => ({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'], healthCheck }],
    });
    // interval 0 sent about 400 probes a second to every origin; timeout 0 failed every probe.
    assert.match(problems(site({ interval: 0 }))['sites[0].healthCheck.interval']!, /more than 0/);
    assert.match(problems(site({ timeout: '0s' }))['sites[0].healthCheck.timeout']!, /more than 0/);
    assert.match(
      problems(site({ expect: '399-200' }))['sites[0].healthCheck.expect']!,
      /the first status of a range must not be above the last/,
    );
    assert.ok('config' in validateConfig(site({ interval: '1ms', timeout: 1, expect: '200-200' })));
  });

  it('refuses tls settings on a plain http:// origin, where they would be ignored', () => {
    for (const tls of [
      { ca: '/etc/strata/origin-ca.pem' },
      { servername: 'app.internal' },
      { verify: false },
    ]) {
      const found = problems({
        origins: [{ name: 'o', url: 'http://127.0.0.1:8443', tls }],
        sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
      });
      assert.match(found['origins[0].tls']!, /https:\/\/ origins only/, JSON.stringify(tls));
    }
    const https = validateConfig({
      origins: [{ name: 'o', url: 'https://127.0.0.1:8443', tls: { servername: 'app.internal' } }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
    });
    assert.ok('config' in https);
  });

  it('refuses origin timeouts of 0, which the HTTP client reads as no limit at all', () => {
    for (const key of ['connectTimeout', 'responseTimeout', 'bodyTimeout']) {
      const found = problems({
        origins: [{ name: 'o', url: 'http://127.0.0.1:1', [key]: 0 }],
        sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
      });
      assert.match(found[`origins[0].${key}`]!, /must be more than 0/, key);
    }
    const ok = validateConfig({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1', connectTimeout: '1ms', responseTimeout: '1s' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
    });
    assert.ok('config' in ok);
  });

  it('refuses an origin listed twice by a site: a one-origin site would get the 1 s connect timeout of a choice', () => {
    const found = problems({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o', 'o'] }],
    });
    assert.match(found['sites[0].origins[1]']!, /"o" is listed twice/);
  });
});
