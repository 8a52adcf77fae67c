import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import { RateAggregator, RateShare } from '../../../src/security/rate-share.ts';
import { SiteGuard } from '../../../src/security/site-guard.ts';

function siteConfig() {
  const result = validateConfig({
    origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
    sites: [
      {
        name: 's',
        hosts: ['*'],
        origins: ['o'],
        security: { rateLimit: { requestsPerSecond: 10, burst: 10 } },
      },
    ],
  });
  assert.ok('config' in result);
  return result.config.sites;
}

const guardFor = (sites: ReturnType<typeof siteConfig>) =>
  new SiteGuard(sites[0]!.security, { trusted: () => false, maxHeaderSize: 16384, workers: 2 });

describe('node-wide rate limits (workers)', () => {
  it('gives each worker half the burst and counts what it admits', () => {
    const sites = siteConfig();
    const guard = guardFor(sites);
    const share = new RateShare();
    share.register('s', guard);
    let admitted = 0;
    for (let i = 0; i < 10; i++) if (guard.check('10.0.0.1', 'GET', '/', {}, [], 0) === undefined) admitted++;
    assert.equal(admitted, 5);
    assert.deepEqual(share.drain(), [{ site: 's', bucket: 'requests', counts: [['10.0.0.1', 5]] }]);
    assert.deepEqual(share.drain(), [], 'counts are drained');
  });

  it('names a key over the node-wide bucket, and the workers refuse it until then', () => {
    const sites = siteConfig();
    const primary = new RateAggregator(sites);
    primary.add([{ site: 's', bucket: 'requests', counts: [['10.0.0.1', 8]] }], 0);
    assert.deepEqual(primary.takeOver(), [], 'within the burst of 10');
    primary.add(
      [
        {
          site: 's',
          bucket: 'requests',
          counts: [
            ['10.0.0.1', 8],
            ['10.0.0.2', 1],
          ],
        },
      ],
      0,
    );
    const over = primary.takeOver();
    assert.equal(over.length, 1);
    assert.deepEqual(
      over[0]!.keys.map(([key]) => key),
      ['10.0.0.1'],
    );
    const until = over[0]!.keys[0]![1];
    assert.ok(
      Math.abs(until - 700) < 1e-6,
      `16 admitted against a burst of 10 at 10/s: refused until 700 ms (${until})`,
    );
    const guard = guardFor(sites);
    const share = new RateShare();
    share.register('s', guard);
    share.apply(over);
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 100)?.kind, 'rate');
    assert.equal(guard.check('10.0.0.2', 'GET', '/', {}, [], 100), undefined);
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 700), undefined, 'admitted again after');
  });

  it('leaves a held key no local burst when its refusal ends: one request, then the rate', () => {
    const sites = siteConfig();
    const guard = guardFor(sites);
    const share = new RateShare();
    share.register('s', guard);
    share.apply([{ site: 's', bucket: 'requests', keys: [['10.0.0.1', 1000]] }]);
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 999)?.kind, 'rate', 'refused before');
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 1000), undefined, 'one at the end of the hold');
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 1000)?.kind, 'rate', 'no burst after it');
    assert.equal(guard.check('10.0.0.1', 'GET', '/', {}, [], 1100), undefined, 'then one per interval');
  });
});
