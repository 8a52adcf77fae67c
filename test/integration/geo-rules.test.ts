import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeMmdb } from '../helpers/mmdb.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/**
 * Country rules read the node's own GeoIP configuration (geo.database), the way `strata serve`
 * runs: no lookup injected by the test (regression: serve passed none, so every address was
 * "unknown" and a deny list never matched).
 */
describe('country rules from the configured GeoIP database', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const dir = mkdtempSync(join(tmpdir(), 'strata-geo-'));
  const page = `/catalogue/${'regional-offers-'.repeat(6)}spring.html?campaign=newsletter&lang=de`;

  before(async () => {
    const database = join(dir, 'countries.mmdb');
    writeMmdb(database, [
      { cidr: '127.0.0.2/32', country: 'DE', continent: 'EU' },
      { cidr: '127.0.0.3/32', country: 'US', continent: 'NA' },
    ]);
    origin = await startOrigin({ [page]: respond(200, { 'cache-control': 'max-age=60' }, 'offers\n') });
    edge = await startNode({
      origin: origin.url,
      config: {
        geo: { database },
        sites: [
          { name: 'default', hosts: ['*'], origins: ['origin'], security: { countries: { deny: ['US'] } } },
        ],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a client the database places in a denied country, hits included', async () => {
    assert.ok(page.length > 100);
    const de = await edge.get(page, { localAddress: '127.0.0.2' });
    assert.equal(de.status, 200);
    assert.equal(de.text, 'offers\n');
    const us = await edge.get(page, { localAddress: '127.0.0.3' });
    assert.equal(us.status, 403);
    assert.equal(us.text, '403 forbidden: this site is not available from your location\n');
    const again = await edge.get(page, { localAddress: '127.0.0.2' });
    assert.match(String(again.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(page), 1);
  });

  it('admits an address the database does not place (deny list: unknown is allowed)', async () => {
    assert.equal((await edge.get(page, { localAddress: '127.0.0.9' })).status, 200);
  });
});
