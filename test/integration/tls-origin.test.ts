import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { until } from '../helpers/wait.ts';
import { startAdminNode } from './purge-support.ts';

describe('https origins', () => {
  let fixtures: Fixtures;
  let server: Server;
  let url: string;
  let leafKey: string;
  const seen: Array<string | undefined> = [];
  const probed: Array<string | undefined> = [];
  const nodes: TestNode[] = [];

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('origin', ['origin.test']);
    leafKey = leaf.key;
    server = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
      const servername = (req.socket as import('node:tls').TLSSocket).servername || undefined;
      if (req.url === '/health') probed.push(servername);
      else seen.push(servername);
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`secure ${req.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const node of nodes) await node.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fixtures.remove();
  });

  async function nodeWith(tls: Record<string, unknown> | undefined): Promise<TestNode> {
    const node = await startNode({
      origin: url,
      config: {
        origins: [
          { name: 'origin', url, connectTimeout: 2000, responseTimeout: 5000, ...(tls ? { tls } : {}) },
        ],
      },
    });
    nodes.push(node);
    return node;
  }

  it('fetches over TLS with the configured CA file and server name, then serves hits', async () => {
    const node = await nodeWith({ ca: fixtures.caFile, servername: 'origin.test' });
    const first = await node.get('/a');
    const second = await node.get('/a');
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'secure /a');
    assert.match(String(second.headers['cache-status']), /^strata; hit/);
    assert.equal(seen.at(-1), 'origin.test');
  });

  it('refuses an origin certificate it cannot verify (502), and accepts it with verify: false', async () => {
    const strict = await nodeWith(undefined);
    const refused = await strict.get('/b');
    assert.equal(refused.status, 502);
    const wrongName = await nodeWith({ ca: fixtures.caFile, servername: 'other.test' });
    assert.equal((await wrongName.get('/c')).status, 502);
    const lax = await nodeWith({ verify: false });
    const accepted = await lax.get('/b');
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.toString(), 'secure /b');
  });

  it("probes an https origin with the origin's own CA file and server name, and keeps it healthy", async () => {
    const before = probed.length;
    const node = await startAdminNode({
      origin: url,
      config: {
        origins: [{ name: 'origin', url, tls: { ca: fixtures.caFile, servername: 'origin.test' } }],
        sites: [
          {
            name: 'checked',
            hosts: ['*'],
            origins: ['origin'],
            healthCheck: { path: '/health', interval: 30, timeout: 1000, unhealthy: 2 },
          },
        ],
      },
    });
    nodes.push(node);
    const state = async () => JSON.parse((await node.call('GET', '/stats')).text).sites[0].origins[0];
    // Probes that cannot verify the certificate never reach the server; a verdict still comes.
    assert.ok(await until(async () => (await state()).healthCheck !== 'unknown', 3000), 'a verdict');
    assert.equal((await state()).healthCheck, 'healthy');
    assert.ok(probed.length > before, 'the probes reached the origin');
    assert.equal(probed.at(-1), 'origin.test');
    const metrics = (await node.call('GET', '/metrics')).text;
    assert.match(metrics, /^strata_origin_state\{origin="origin"\} 0$/m);
  });

  it('probes an https origin with verify: false as its requests go', async () => {
    const node = await startAdminNode({
      origin: url,
      config: {
        origins: [{ name: 'origin', url, tls: { verify: false } }],
        sites: [
          {
            name: 'checked',
            hosts: ['*'],
            origins: ['origin'],
            healthCheck: { path: '/health', interval: 30, timeout: 1000, unhealthy: 2 },
          },
        ],
      },
    });
    nodes.push(node);
    const state = async () => JSON.parse((await node.call('GET', '/stats')).text).sites[0].origins[0];
    assert.ok(await until(async () => (await state()).healthCheck !== 'unknown', 3000), 'a verdict');
    assert.equal((await state()).healthCheck, 'healthy');
  });

  it('refuses to start when the CA file cannot be read or holds no certificate, naming the origin', async () => {
    await assert.rejects(nodeWith({ ca: '/nonexistent/ca.pem' }), (error: Error) =>
      /origin origin: cannot read tls.ca \/nonexistent\/ca.pem/.test(error.message),
    );
    // A file that is no certificate: before, the node started and every request failed its TLS check.
    await assert.rejects(nodeWith({ ca: leafKey }), (error: Error) =>
      /origin origin: tls.ca .* holds no PEM certificate/.test(error.message),
    );
  });
});
