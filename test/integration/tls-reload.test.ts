import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { createFixtures, type Fixtures, type Leaf } from '../helpers/certs.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

/** The fingerprint of the certificate presented for `servername`. */
function fingerprint(port: number, ca: string, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca,
      servername,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined, // chain verified; names are not what these tests compare
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function until(done: () => Promise<boolean>, ms: number): Promise<number> {
  const start = performance.now();
  while (!(await done())) {
    if (performance.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return performance.now() - start;
}

describe('certificate reload', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;
  let main: Leaf;
  let a: Leaf;

  before(async () => {
    fixtures = createFixtures();
    main = fixtures.leaf('main', ['main.test']);
    a = fixtures.leaf('a', ['a.test']);
    const spare = fixtures.leaf('spare', ['spare.test']);
    origin = await startOrigin({ '/r': respond(200, { 'cache-control': 'max-age=60' }, 'r') });
    // A thousand names configured; each is read only when a client asks for it.
    const many = Array.from({ length: 1000 }, (_, i) => ({ hosts: [`site${i}.many.test`], ...spare }));
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          {
            listen: '127.0.0.1:0',
            tls: { cert: main.cert, key: main.key, sni: [{ hosts: ['a.test'], ...a }, ...many] },
          },
        ],
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('starts with 1,000 SNI names building no context, then only those of the names clients ask for', async () => {
    const store = node.node.secureListeners[0]!.certificates;
    const before = store.built;
    assert.equal(before, 0);
    await fingerprint(port, fixtures.ca, 'site500.many.test');
    await fingerprint(port, fixtures.ca, 'site500.many.test');
    assert.equal(store.built, 1);
  });

  it('uses a certificate replaced on disk within a second under load: 0 errors, the open HTTP/2 connection kept', async () => {
    const session = h2connect(`https://127.0.0.1:${port}`, { ca: fixtures.ca, servername: 'a.test' });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/r', ':authority': 'a.test' });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
    try {
      assert.equal(await get(), 200);
      const old = await fingerprint(port, fixtures.ca, 'a.test');
      // Load while the pair is replaced: requests on the open connection and new handshakes.
      let loading = true;
      const statuses: number[] = [];
      const failures: unknown[] = [];
      const load = Array.from({ length: 4 }, async (_, i) => {
        for (let n = 0; loading && n < 2000; n++) {
          try {
            if (i % 2 === 0) statuses.push(await get());
            else await fingerprint(port, fixtures.ca, 'a.test');
          } catch (error) {
            failures.push(error);
          }
        }
      });
      fixtures.leaf('a', ['a.test']); // a new key and certificate written over the same files
      const took = await until(async () => (await fingerprint(port, fixtures.ca, 'a.test')) !== old, 2000);
      loading = false;
      await Promise.all(load);
      assert.ok(took < 1000, `took ${took} ms`);
      assert.deepEqual(failures, []);
      assert.ok(statuses.length > 0 && statuses.every((s) => s === 200));
      assert.equal(await get(), 200);
      assert.equal(session.destroyed, false);
    } finally {
      session.close();
    }
  });

  it('keeps the certificate in use when the new pair is invalid, and says why', async () => {
    const listener = node.node.secureListeners[0]!;
    const old = await fingerprint(port, fixtures.ca, 'main.test');
    writeFileSync(main.cert, 'not a certificate\n');
    const report = listener.reloadCertificates('test');
    assert.equal(report.kept.length, 1);
    assert.equal(report.kept[0]!.cert, main.cert);
    assert.match(report.kept[0]!.reason, /certificate|PEM|asn1|decode/i);
    assert.equal(await fingerprint(port, fixtures.ca, 'main.test'), old);
    // A good pair again: taken on the next reload (SIGHUP runs the same).
    fixtures.leaf('main', ['main.test']);
    const fixed = listener.reloadCertificates('SIGHUP');
    assert.equal(fixed.kept.length, 0);
    assert.notEqual(await fingerprint(port, fixtures.ca, 'main.test'), old);
  });
});

describe('session ticket keys', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;

  before(async () => {
    fixtures = createFixtures();
    const main = fixtures.leaf('main', ['main.test']);
    const sni = fixtures.leaf('sni', ['sni.test']);
    origin = await startOrigin({});
    node = await startNode({
      origin: origin.url,
      config: {
        listeners: [
          {
            listen: '127.0.0.1:0',
            tls: { cert: main.cert, key: main.key, sni: [{ hosts: ['sni.test'], ...sni }] },
          },
        ],
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  /** One handshake offering `session`; whether it resumed, and the ticket it got. */
  function handshake(
    servername: string,
    session?: Buffer,
  ): Promise<{ reused: boolean; session: Buffer | undefined }> {
    return new Promise((resolve, reject) => {
      let ticket: Buffer | undefined;
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: fixtures.ca,
        servername,
        ALPNProtocols: ['http/1.1'],
        ...(session ? { session } : {}),
      });
      socket.on('session', (s: Buffer) => {
        ticket = s;
      });
      socket.once('secureConnect', () => {
        const reused = socket.isSessionReused();
        socket.end(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
        socket.resume();
        socket.once('close', () => resolve({ reused, session: ticket }));
      });
      socket.once('error', reject);
    });
  }

  it('resumes sessions on the default and SNI certificates, and a rotation ends the tickets issued before it', async () => {
    for (const name of ['main.test', 'sni.test']) {
      const first = await handshake(name);
      assert.equal(first.reused, false);
      const again = await handshake(name, first.session);
      assert.equal(again.reused, true, `${name} resumed`);
      node.node.setTicketKeys(randomBytes(48));
      const afterRotation = await handshake(name, again.session);
      assert.equal(afterRotation.reused, false, `${name}: an old ticket after rotation`);
      const fresh = await handshake(name, afterRotation.session);
      assert.equal(fresh.reused, true, `${name}: a ticket of the new keys`);
    }
  });
});

describe('an SNI pair that does not load on first use', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    fixtures = createFixtures();
    const main = fixtures.leaf('main', ['main.test']);
    const shop = fixtures.leaf('shop', ['shop.test']);
    // The key of another pair: the certificate and key do not belong together.
    const broken = { cert: shop.cert, key: main.key };
    origin = await startOrigin({});
    const sink = sinkInto(lines);
    node = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info' },
        listeners: [
          {
            listen: '127.0.0.1:0',
            tls: { cert: main.cert, key: main.key, sni: [{ hosts: ['shop.test'], ...broken }] },
          },
        ],
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  it('answers its name with the default certificate and logs why, once', async () => {
    const fallback = await fingerprint(port, fixtures.ca, 'main.test');
    assert.equal(await fingerprint(port, fixtures.ca, 'shop.test'), fallback);
    assert.equal(await fingerprint(port, fixtures.ca, 'shop.test'), fallback);
    const logged = lines.filter((line) => String(line.msg).startsWith('certificate not loaded'));
    assert.equal(logged.length, 1, JSON.stringify(lines.map((line) => line.msg)));
    assert.equal(logged[0]!.servername, 'shop.test');
    assert.match(String(logged[0]!.cert), /shop\.pem$/);
    assert.match(String(logged[0]!.reason), /key values mismatch/);
    assert.equal(logged[0]!.level, 50);
  });
});

/** The validity end of the certificate presented for `servername`, not verified (it may be out of date). */
function presented(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().valid_to);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('a certificate out of its validity period', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let node: TestNode;
  let port: number;
  let expired: Leaf;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    fixtures = createFixtures();
    expired = fixtures.datedLeaf('expired', ['expired.test'], '20200101000000Z', '20200201000000Z');
    const early = fixtures.datedLeaf('early', ['early.test'], '20990101000000Z', '20991231000000Z');
    origin = await startOrigin({});
    const sink = sinkInto(lines);
    node = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info' },
        listeners: [
          {
            listen: '127.0.0.1:0',
            tls: { cert: expired.cert, key: expired.key, sni: [{ hosts: ['early.test'], ...early }] },
          },
        ],
      },
    });
    port = Number(node.node.addresses[0]!.split(':').pop());
  });

  after(async () => {
    await node.close();
    await origin.close();
    fixtures.remove();
  });

  const outOfDate = () => lines.filter((line) => String(line.msg).startsWith('certificate out of date'));

  it('says so at start, naming the file and the date, and serves it still', async () => {
    const logged = outOfDate();
    assert.equal(logged.length, 1, JSON.stringify(lines.map((line) => line.msg)));
    assert.equal(logged[0]!.cert, expired.cert);
    assert.match(String(logged[0]!.reason), /expired on 2020-02-01/);
    assert.equal(logged[0]!.level, 40);
    assert.match(await presented(port, 'expired.test'), /Feb {2}1 00:00:00 2020/);
  });

  it('says so for an SNI pair on its first use, and for each pair read again on reload', async () => {
    assert.match(await presented(port, 'early.test'), /2099/);
    await presented(port, 'early.test');
    const early = outOfDate().slice(1);
    assert.equal(early.length, 1);
    assert.match(String(early[0]!.reason), /not valid before 2099-01-01/);
    node.node.secureListeners[0]!.reloadCertificates('SIGHUP');
    assert.equal(outOfDate().length, 4);
  });
});
