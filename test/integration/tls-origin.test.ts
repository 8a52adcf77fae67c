import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';

describe('https origins', () => {
  let fixtures: Fixtures;
  let server: Server;
  let url: string;
  const seen: Array<string | undefined> = [];
  const nodes: TestNode[] = [];

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('origin', ['origin.test']);
    server = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
      seen.push((req.socket as import('node:tls').TLSSocket).servername || undefined);
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

  it('refuses to start when the CA file cannot be read, naming the origin', async () => {
    await assert.rejects(nodeWith({ ca: '/nonexistent/ca.pem' }), (error: Error) =>
      /origin origin: cannot read tls.ca \/nonexistent\/ca.pem/.test(error.message),
    );
  });
});
