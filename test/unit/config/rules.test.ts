import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';

const withRules = (rules: unknown[], extra: Record<string, unknown> = {}) => ({
  origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
  sites: [{ name: 's', hosts: ['*'], origins: ['o'], rules, ...extra }],
});

function problems(config: unknown): string[] {
  const result = validateConfig(config);
  assert.ok('problems' in result, 'expected the config to be refused');
  return result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('site rules configuration', () => {
  it('accepts the documented shape; TTLs are seconds, with units or without', () => {
    const result = validateConfig(
      withRules(
        [
          { match: { path: '/static/*' }, ttl: '10m', statusTtl: { 404: '1m', '5xx': 0 }, browserTtl: 60 },
          { match: { cookie: 'session' }, action: 'pass' },
          {
            name: 'api',
            match: { path: '/api/' },
            cacheKey: { query: { exclude: ['utm_*'] } },
            headers: { request: { set: {}, remove: [] }, response: { set: {}, remove: ['Server'] } },
          },
        ],
        { clientCacheControl: 'ignore' },
      ),
    );
    assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
    const site = result.config.sites[0]!;
    assert.equal(site.clientCacheControl, 'ignore');
    assert.equal(site.rules[0]!.ttl, 600);
    assert.deepEqual(site.rules[0]!.statusTtl, { 404: 60, '5xx': 0 });
    assert.deepEqual(site.rules[2]!.headers?.response?.remove, ['server']);
  });

  it('defaults to no rules and honoring client directives', () => {
    const result = validateConfig({
      origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
    });
    assert.ok('config' in result);
    assert.deepEqual(result.config.sites[0]!.rules, []);
    assert.equal(result.config.sites[0]!.clientCacheControl, 'honor');
  });

  it('reports every bad rule at once, with its path and a message that says what to write', () => {
    const found = problems(
      withRules([
        { match: { path: 'static/' }, ttl: '10m' },
        { match: { path: '~^/(unclosed' }, ttl: 60 },
        { match: { path: '/a' }, ttl: '10 parsecs' },
        { match: { path: '/b' } },
        { match: { path: '/c' }, statusTtl: { 600: 1, abc: 1 } },
        { match: { path: '/d' }, minTtl: '1h', maxTtl: '1m' },
        { match: { path: '/e' }, action: 'purge' },
        { match: { path: '/f' }, cacheKey: { query: { include: ['a'], exclude: ['b'] } } },
        {
          match: { path: '/g' },
          headers: { request: { set: { Host: 'evil' } }, response: { remove: ['content-length'] } },
        },
        { match: { path: '/h', colour: 'blue' }, ttl: 1 },
        { match: { path: '/i' }, ignore: ['etag'] },
        { match: { path: '/j' }, headers: { response: { set: { 'X-A': 'a\r\nSet-Cookie: x=1' } } } },
      ]),
    );
    const expect = [
      /^sites\[0\]\.rules\[0\]\.match\.path: a path starts with \//,
      /^sites\[0\]\.rules\[1\]\.match\.path: invalid regular expression/,
      /^sites\[0\]\.rules\[2\]\.ttl: "10 parsecs" is not a TTL/,
      /^sites\[0\]\.rules\[3\]: a rule needs at least one action/,
      /^sites\[0\]\.rules\[4\]\.statusTtl.*expected a status \(404\) or a class \(5xx\)/,
      /^sites\[0\]\.rules\[5\]\.minTtl: minTtl is larger than maxTtl/,
      /^sites\[0\]\.rules\[6\]\.action:/,
      /^sites\[0\]\.rules\[7\]\.cacheKey\.query: give include or exclude, not both/,
      /^sites\[0\]\.rules\[8\]\.headers\.request\.set\.Host: Host belongs to the node/,
      /^sites\[0\]\.rules\[8\]\.headers\.response\.remove\[0\]: content-length belongs to the node/,
      /^sites\[0\]\.rules\[9\]\.match: unknown key colour/,
      /^sites\[0\]\.rules\[10\]\.ignore\[0\]:/,
      /^sites\[0\]\.rules\[11\]\.headers\.response\.set\.X-A: a value holds no CR, LF or NUL/,
    ];
    for (const pattern of expect)
      assert.ok(
        found.some((line) => pattern.test(line)),
        `${pattern}\n${found.join('\n')}`,
      );
  });

  it('refuses two rules of one name (a default name included)', () => {
    const found = problems(withRules([{ ttl: 1 }, { name: 'rule-1', ttl: 2 }]));
    assert.ok(found.includes('sites[0].rules[1].name: duplicate rule name "rule-1"'), found.join('\n'));
  });

  it('refuses a bad clientCacheControl', () => {
    const found = problems(withRules([], { clientCacheControl: 'sometimes' }));
    assert.ok(
      found.some((line) => line.startsWith('sites[0].clientCacheControl:')),
      found.join('\n'),
    );
  });
});
