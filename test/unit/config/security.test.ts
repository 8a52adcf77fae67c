import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';

const base = { origins: [{ name: 'o', url: 'http://127.0.0.1:1' }] };
const withSecurity = (security: unknown) => ({
  ...base,
  sites: [{ name: 's', hosts: ['*'], origins: ['o'], security }],
});

describe('sites[].security', () => {
  it('reports every bad CIDR, bucket and rule with its path', () => {
    const result = validateConfig(
      withSecurity({
        deny: ['10.0.0.0/8', '10.0.0.0/33', 'example.com'],
        allow: ['fd00::/129'],
        rateLimit: { requestsPerSecond: 0, by: 'cookie' },
        countries: { allow: ['DE'], deny: ['US'] },
        block: [{ pathPattern: '(' }],
      }),
    );
    assert.ok('problems' in result);
    const paths = result.problems.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      'sites[0].security.allow[0]',
      'sites[0].security.block[0].pathPattern',
      'sites[0].security.countries',
      'sites[0].security.deny[1]',
      'sites[0].security.deny[2]',
      'sites[0].security.rateLimit.by',
      'sites[0].security.rateLimit.requestsPerSecond',
    ]);
    const deny = result.problems.find((p) => p.path === 'sites[0].security.deny[1]');
    assert.match(deny!.message, /CIDR/);
  });

  it('takes a full security section and fills the limits and checks by default', () => {
    const result = validateConfig(
      withSecurity({
        rateLimit: { requestsPerSecond: 100, burst: 200, by: 'header:X-Api-Key' },
        originLimit: { requestsPerSecond: 5 },
        allow: ['192.0.2.0/24', '2001:db8::/32'],
        deny: ['0.0.0.0/0'],
        countries: { deny: ['us', 'EU'] },
        limits: { maxBodySize: '1MiB' },
      }),
    );
    assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
    const security = result.config.sites[0]!.security;
    assert.equal(security.rateLimit?.by, 'header:X-Api-Key');
    assert.equal(security.originLimit?.by, 'client');
    assert.deepEqual(security.countries?.deny, ['US', 'EU']);
    assert.equal(security.limits.maxBodySize, 1024 * 1024);
    assert.equal(security.limits.maxUrlLength, 8192);
    assert.equal(security.poisonCheck, true);
    assert.equal(security.deceptionCheck, true);
  });

  it('gives a site without a security section the default limits and no rate limit', () => {
    const result = validateConfig(withSecurity(undefined));
    assert.ok('config' in result);
    assert.equal(result.config.sites[0]!.security.rateLimit, undefined);
    assert.equal(result.config.sites[0]!.security.limits.maxHeaders, 100);
  });
});

describe('sites[].security.countries codes', () => {
  it('refuses a code no client can be placed in, and takes countries, continents and geo.networks regions', () => {
    const bad = validateConfig(withSecurity({ countries: { allow: ['DE', 'Germany', 'XX', 'eu-west'] } }));
    assert.ok('problems' in bad);
    assert.deepEqual(
      bad.problems.map((p) => p.path),
      [
        'sites[0].security.countries.allow[1]',
        'sites[0].security.countries.allow[2]',
        'sites[0].security.countries.allow[3]',
      ],
    );
    assert.match(bad.problems[0]!.message, /"GERMANY" is no ISO 3166-1 country code/);
    const good = validateConfig({
      ...withSecurity({ countries: { deny: ['us', 'GB', 'EU', 'NA', 'eu-west'] } }),
      origins: [{ name: 'o', url: 'http://127.0.0.1:1', region: 'eu-west' }],
      geo: { networks: [{ cidr: '10.0.0.0/8', region: 'eu-west' }] },
    });
    assert.ok('config' in good, JSON.stringify('problems' in good && good.problems));
  });

  it('makes ICU region names only for a configuration with country codes, not when the config modules load', () => {
    // Made at load, they cost every process about 5 MiB of resident memory at start.
    const load = join(import.meta.dirname, '../../../src/config/load.ts');
    const script = `
      let made = 0;
      const Base = Intl.DisplayNames;
      Intl.DisplayNames = class extends Base { constructor(...args) { super(...args); made++; } };
      const { validateConfig } = await import(${JSON.stringify(load)});
      const plain = validateConfig({ origins: [{ name: 'o', url: 'http://127.0.0.1:1' }] });
      const atLoad = made;
      const site = { name: 's', hosts: ['*'], origins: ['o'], security: { countries: { deny: ['DE', 'XX'] } } };
      const ruled = validateConfig({ origins: [{ name: 'o', url: 'http://127.0.0.1:1' }], sites: [site] });
      process.stdout.write(JSON.stringify({ atLoad, plain: 'config' in plain, after: made, problems: ruled.problems?.length }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
    );
    assert.deepEqual(out, { atLoad: 0, plain: true, after: 1, problems: 1 });
  });
});
