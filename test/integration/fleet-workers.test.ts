/**
 * The fleet bus with `strata serve --workers 2`: only the primary talks to NATS; a purge from
 * the bus applied there reaches what every worker serves, and a shared configuration put in
 * the bucket replaces the workers with it. Skipped when nats-server is not installed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { request } from '../helpers/http.ts';
import { natsMissing, startNats, type TestNats } from '../helpers/nats.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, eventually, startAdminNode } from './purge-support.ts';
import { type Served, serve, TOKEN } from './workers-support.ts';

const skip = natsMissing();
const PATH = `/w/${'p'.repeat(110)}.js`;

describe('fleet bus with workers', { skip }, () => {
  let nats: TestNats;
  let origin: TestOrigin;
  let other: TestOrigin;
  let served: Served | undefined;
  let peer: AdminNode | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-workers-'));

  before(async () => {
    nats = await startNats();
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'max-age=600' }, 'script') });
    other = await startOrigin({ '/new': respond(200, { 'cache-control': 'max-age=600' }, 'new site') });
  });
  after(async () => {
    served?.child.kill('SIGTERM');
    await served?.exited;
    await peer?.close();
    await origin.close();
    await other.close();
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const adminGet = async (path: string) =>
    request(`${served!.admin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });

  it('applies a bus purge once in the primary, seen by every worker, and takes a shared configuration', async () => {
    const file = join(dir, 'strata.yaml');
    writeFileSync(
      file,
      [
        `origins: [{ name: origin, url: "${origin.url}" }]`,
        'sites: [{ name: default, hosts: ["*"], origins: [origin] }]',
        `fleet: { nats: { servers: ["${nats.url}"] }, node: workers, config: { key: workers } }`,
        '',
      ].join('\n'),
    );
    served = await serve(origin.url, dir, file);
    assert.ok(await eventually(async () => (await adminGet('/readyz')).status === 200, 15_000));
    peer = await startAdminNode({
      origin: origin.url,
      config: { fleet: { nats: { servers: [nats.url] }, node: 'peer' } },
    });
    assert.ok(await eventually(async () => (await peer!.call('GET', '/readyz')).status === 200, 15_000));
    // Stored once; hits from both workers (several connections).
    await request(`${served.url}${PATH}`, { headers: { host: 'w.test' } });
    // Committed before the hits, whichever worker they reach (as in metrics.test.ts).
    const stored = async () => JSON.parse((await adminGet('/stats')).text).store.entries === 1;
    assert.ok(await eventually(stored, 5000), 'the first response was stored');
    for (let i = 0; i < 6; i++) {
      const hit = await request(`${served.url}${PATH}`, { headers: { host: 'w.test', connection: 'close' } });
      assert.match(String(hit.headers['cache-status']), /hit/);
    }
    assert.equal(origin.count(PATH), 1);
    await peer.purge({ urls: [`http://w.test${PATH}`] });
    assert.ok(
      await eventually(
        async () => JSON.parse((await adminGet('/stats')).text).fleet.consumed.applied === 1,
        10_000,
      ),
    );
    for (let i = 0; i < 6; i++) {
      const after = await request(`${served.url}${PATH}`, {
        headers: { host: 'w.test', connection: 'close' },
      });
      assert.equal(after.status, 200);
      assert.equal(after.text, 'script');
    }
    assert.equal(origin.count(PATH), 2);
    // A shared configuration: applied in the primary, then every worker replaced with it.
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create('STRATA_CONFIG');
      await kv.put(
        'workers',
        `origins: [{ name: other, url: "${other.url}" }]\nsites: [{ name: new, hosts: ["*"], origins: [other] }]\n`,
      );
    } finally {
      await nc.close();
    }
    assert.ok(
      await eventually(async () => {
        // While the workers are replaced: a request never answered fails here, with its URL.
        const answer = await request(`${served!.url}/new`, {
          headers: { host: 'n.test', connection: 'close' },
          timeoutMs: 5000,
        });
        return answer.text === 'new site';
      }, 20_000),
    );
    assert.equal(JSON.parse((await adminGet('/stats')).text).fleet.config.status, 'applied');
  });
});
