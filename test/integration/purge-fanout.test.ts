import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type AdminNode, eventually, startAdminNode, TOKEN } from './purge-support.ts';

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const retry = { initial: '20ms', max: '100ms' };

describe('purge fan-out to peers', () => {
  let origin: TestOrigin;
  const dirs: string[] = [];
  const nodes: AdminNode[] = [];

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-fanout-'));
    dirs.push(dir);
    return dir;
  };
  const start = async (options: Parameters<typeof startAdminNode>[0]) => {
    const node = await startAdminNode(options);
    nodes.push(node);
    return node;
  };
  const stop = async (node: AdminNode) => {
    nodes.splice(nodes.indexOf(node), 1);
    await node.close({ keepDir: true });
  };

  before(async () => {
    origin = await startOrigin({
      '/p': respond(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'p' }, 'p'),
    });
  });
  after(async () => {
    for (const node of nodes) await node.close({ keepDir: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await origin.close();
  });

  it('delivers purges in order to a peer that was down, once it returns, across a restart of the sender', async () => {
    const peerPort = await freePort();
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const senderDir = tempDir();
    const purge = { peers: [{ url: peerUrl, token: TOKEN }], retry };
    let sender = await start({ origin: origin.url, dir: senderDir, purge });
    const first = await sender.purge({ tags: ['p'] });
    await sender.purge({ urls: ['http://example.test/x'], soft: true });
    assert.ok(await eventually(() => (sender.node.fanOut?.peers[0]?.failures ?? 0) >= 2));
    const stats = JSON.parse((await sender.call('GET', '/stats')).text);
    assert.equal(stats.purge.peers[0].url, peerUrl);
    assert.equal(stats.purge.peers[0].delivered, first.sequence - 1);
    assert.equal(stats.purge.peers[0].pending, 2);
    assert.match(stats.purge.peers[0].lastError, /ECONNREFUSED/);
    const metrics = (await sender.call('GET', '/metrics')).text;
    assert.match(metrics, /strata_purge_peer_pending\{peer="http:\/\/127\.0\.0\.1:\d+"\} 2/);

    // The sender restarts while the peer is still down; a third purge is added.
    await stop(sender);
    sender = await start({ origin: origin.url, dir: senderDir, purge });
    const third = await sender.purge({ prefixes: ['http://example.test/y/'] });

    const peer = await start({
      origin: origin.url,
      dir: tempDir(),
      admin: { listen: `127.0.0.1:${peerPort}` },
    });
    await peer.get('/p');
    assert.ok(await eventually(() => peer.node.purge.log.sequence >= 3));
    const received = [1, 2, 3].map((s) => peer.node.purge.log.get(s)?.command);
    assert.deepEqual(received[0]?.tags, ['p']);
    assert.deepEqual(received[1]?.urls, ['http://example.test/x']);
    assert.deepEqual(received[2]?.prefixes, ['http://example.test/y/']);
    assert.ok(await eventually(() => sender.node.fanOut?.peers[0]?.delivered === third.sequence));
    assert.equal(sender.node.fanOut?.peers[0]?.pending, 0);
    assert.equal(peer.node.purge.log.get(1)?.path[0], sender.node.purge.nodeId);
  });

  it('applies what a peer forwards once, and stops a purge that comes back around a loop', async () => {
    const portA = await freePort();
    const portB = await freePort();
    const a = await start({
      origin: origin.url,
      dir: tempDir(),
      admin: { listen: `127.0.0.1:${portA}` },
      purge: { peers: [{ url: `http://127.0.0.1:${portB}`, token: TOKEN }], retry },
    });
    const b = await start({
      origin: origin.url,
      dir: tempDir(),
      admin: { listen: `127.0.0.1:${portB}` },
      purge: { peers: [{ url: `http://127.0.0.1:${portA}/`, token: TOKEN }], retry },
    });
    await b.get('/p');
    const sent = await a.purge({ tags: ['p'] });
    assert.ok(await eventually(() => b.node.fanOut?.peers[0]?.delivered === b.node.purge.log.sequence));
    assert.ok(await eventually(() => a.node.fanOut?.peers[0]?.delivered === sent.sequence));
    assert.equal(b.node.purge.log.sequence, 1);
    assert.equal(a.node.purge.log.sequence, sent.sequence, 'the purge did not come back as a new one');
    assert.equal(b.node.store.lookup(`${b.base}/p`, {}).kind, 'miss');
    // The purge keeps its origin (A, its sequence there) at B: the tiers' fence names it so.
    assert.deepEqual(b.node.purge.log.get(1)?.origin, { node: a.node.purge.nodeId, sequence: sent.sequence });
    assert.equal(b.node.purge.appliedFrom(a.node.purge.nodeId), sent.sequence);

    // A sender that retries (its acknowledgement was lost) is answered without a second purge.
    const again = await b.call('POST', '/purge', {
      tags: ['p'],
      forwarded: { node: a.node.purge.nodeId, sequence: sent.sequence, path: [a.node.purge.nodeId] },
    });
    assert.equal(again.status, 200);
    assert.equal(JSON.parse(again.text).purged, 0);
    assert.equal(b.node.purge.log.sequence, 1);
  });

  it('forwards host purges and PURGE requests to a peer, which applies them', async () => {
    const peerPort = await freePort();
    const sender = await start({
      origin: origin.url,
      dir: tempDir(),
      purge: { peers: [{ url: `http://127.0.0.1:${peerPort}`, token: TOKEN }], retry },
    });
    const peer = await start({
      origin: origin.url,
      dir: tempDir(),
      admin: { listen: `127.0.0.1:${peerPort}` },
    });
    await peer.get('/p');
    const host = new URL(peer.base).host;
    const sent = await sender.purge({ hosts: [host] });
    assert.ok(await eventually(() => sender.node.fanOut?.peers[0]?.delivered === sent.sequence));
    assert.deepEqual(peer.node.purge.log.get(peer.node.purge.log.sequence)?.command.hosts, [host]);
    assert.equal(peer.node.store.lookup(`${peer.base}/p`, {}).kind, 'miss');

    await peer.get('/p');
    const url = `${peer.base}/p?${'campaign=autumn-sale&'.repeat(5)}ref=newsletter`;
    await peer.get(new URL(url).pathname + new URL(url).search);
    const purge = await sender.call('PURGE', '/', undefined);
    assert.equal(purge.status, 400, 'PURGE / without Surrogate-Key names the admin listener itself');
    const byMethod = await request(sender.admin, {
      method: 'PURGE',
      rawPath: url,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const sequence = (JSON.parse(byMethod.text) as { sequence: number }).sequence;
    assert.ok(await eventually(() => sender.node.fanOut?.peers[0]?.delivered === sequence));
    assert.equal(peer.node.store.lookup(url, {}).kind, 'miss');
    assert.equal(peer.node.store.lookup(`${peer.base}/p`, {}).kind, 'found');
  });
});
