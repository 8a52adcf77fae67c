import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyExtras, keyTarget } from '../../../src/cache/key-rules.ts';
import { validateConfig } from '../../../src/config/load.ts';
import type { RuleConfig } from '../../../src/config/rules-schema.ts';
import { SiteRules } from '../../../src/edge/site-rules.ts';

function compiled(rules: unknown[], clientCacheControl: 'honor' | 'ignore' = 'honor'): SiteRules {
  const result = validateConfig({
    origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
    sites: [{ name: 's', hosts: ['*'], origins: ['o'], rules }],
  });
  assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
  const config: RuleConfig[] = result.config.sites[0]!.rules;
  return new SiteRules(config, clientCacheControl, (address) => (address === '10.0.0.1' ? ['eu', 'de'] : []));
}

describe('site rules', () => {
  it('gives each kind of action to the first matching rule that sets it; rewrites add up', () => {
    const rules = compiled([
      { name: 'hide', headers: { response: { remove: ['server'] } } },
      { name: 'static', match: { path: '/static/' }, ttl: '1h', browserTtl: 60 },
      { name: 'all', ttl: '1m', maxTtl: '1d', headers: { response: { set: { 'x-a': '1' } } } },
    ]);
    const decision = rules.decide('GET', '/static/app.js', {}, '');
    assert.equal(decision.overrides?.ttl, 3600);
    assert.equal(decision.overrides?.maxTtl, 86400);
    assert.equal(decision.browserTtl, 60);
    assert.equal(decision.response?.length, 2);
    assert.equal(decision.name, 'hide,static,all');
    const other = rules.decide('GET', '/index.html', {}, '');
    assert.equal(other.overrides?.ttl, 60);
    assert.equal(other.name, 'hide,all');
  });

  it('matches method, glob and regex paths, query, header, cookie and region', () => {
    const rules = compiled([
      { name: 'post', match: { method: 'POST' }, action: 'pass' },
      { name: 'png', match: { path: '/img/*.png' }, ttl: 1 },
      { name: 'v', match: { path: '~^/v[0-9]+/' }, ttl: 2 },
      { name: 'preview', match: { query: { preview: 'tr*' } }, action: 'bypass' },
      { name: 'mobile', match: { header: { 'user-agent': '*Mobile*' } }, ttl: 3 },
      { name: 'session', match: { cookie: ['session', 'auth'] }, action: 'pass' },
      { name: 'eu', match: { region: 'DE' }, browserTtl: 9 },
    ]);
    assert.equal(rules.decide('POST', '/x', {}, '').name, 'post');
    assert.equal(rules.decide('GET', '/img/logo.png', {}, '').name, 'png');
    assert.equal(rules.decide('GET', '/img/logo.jpg', {}, '').name, undefined);
    assert.equal(rules.decide('GET', '/v2/users', {}, '').name, 'v');
    assert.equal(rules.decide('GET', '/page?preview=true', {}, '').action, 'bypass');
    assert.equal(rules.decide('GET', '/page?preview=false', {}, '').action, undefined);
    const ua = { 'user-agent': 'Mozilla/5.0 (iPhone) Mobile/15E148' };
    assert.equal(rules.decide('GET', '/m', ua, '').overrides?.ttl, 3);
    assert.equal(rules.decide('GET', '/m', {}, '').overrides, undefined);
    assert.equal(rules.decide('GET', '/m', { cookie: 'a=1; auth=xyz' }, '').action, 'pass');
    assert.equal(rules.decide('GET', '/m', { cookie: 'a=1' }, '').action, undefined);
    assert.equal(rules.decide('GET', '/m', {}, '10.0.0.1').browserTtl, 9);
  });

  it('remembers the selection per URL without mixing requests that differ in headers or cookies', () => {
    const rules = compiled([{ name: 'session', match: { cookie: 'session' }, action: 'pass' }]);
    for (let i = 0; i < 3; i++) {
      assert.equal(rules.decide('GET', '/same', { cookie: 'session=1' }, '').action, 'pass');
      assert.equal(rules.decide('GET', '/same', {}, '').action, undefined);
    }
  });

  it('ignores client directives by site, and a rule overrides the site', () => {
    const rules = compiled([{ match: { path: '/honor/' }, clientCacheControl: 'honor' }], 'ignore');
    assert.equal(rules.decide('GET', '/x', {}, '').ignoreClient, true);
    assert.equal(rules.decide('GET', '/honor/x', {}, '').ignoreClient, false);
  });
});

describe('rule cache keys', () => {
  it('filters, sorts or drops the query', () => {
    const exclude = (name: string) => !name.startsWith('utm_');
    assert.equal(
      keyTarget('/p?b=2&utm_source=x&a=1', { keep: exclude, sort: true, ignore: false }),
      '/p?a=1&b=2',
    );
    assert.equal(keyTarget('/p?utm_source=x', { keep: exclude, sort: false, ignore: false }), '/p');
    assert.equal(keyTarget('/p?a=1', { sort: false, ignore: true }), '/p');
    assert.equal(keyTarget('/p', { sort: true, ignore: false }), '/p');
  });

  it('adds request values after a space, which no request target holds', () => {
    const extras = keyExtras(
      { headers: ['accept-language'], cookies: ['currency'], region: true },
      () => 'de-DE,de;q=0.9',
      () => undefined,
      () => 'eu',
    );
    assert.equal(extras, ' h:accept-language=de-DE%2Cde%3Bq%3D0.9&c:currency=&r:eu');
  });
});

describe('response rewrites', () => {
  it('apply in rule order: a field set by one rule and removed by a later one is gone; browserTtl only from the cache', async () => {
    const { rewriteResponse } = await import('../../../src/edge/rule-effects.ts');
    const rules = compiled([
      {
        name: 'a',
        headers: { response: { set: { 'X-Debug': '1' }, append: { Link: '</a.css>; rel=preload' } } },
      },
      { name: 'b', browserTtl: 30, headers: { response: { remove: ['x-debug', 'server'] } } },
    ]);
    const decision = rules.decide('GET', '/', {}, '');
    const origin = [
      'Server',
      'nginx',
      'Cache-Control',
      'max-age=600',
      'Expires',
      'x',
      'Link',
      '</b.js>; rel=preload',
    ];
    assert.deepEqual(rewriteResponse(origin.slice(), decision, true), [
      'Link',
      '</b.js>; rel=preload',
      'Cache-Control',
      'max-age=30',
      'Link',
      '</a.css>; rel=preload',
    ]);
    assert.deepEqual(rewriteResponse(origin.slice(), decision, false), [
      'Cache-Control',
      'max-age=600',
      'Expires',
      'x',
      'Link',
      '</b.js>; rel=preload',
      'Link',
      '</a.css>; rel=preload',
    ]);
  });
});
