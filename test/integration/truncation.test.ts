import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { request } from '../helpers/http.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';

/**
 * A raw origin: `answer` gets each request's target and the socket once the request head
 * arrived, and writes whatever bytes the case wants; requests are counted by target in `asked`.
 */
async function rawOrigin(
  asked: Map<string, number>,
  answer: (target: string, socket: Socket) => void,
): Promise<{ server: Server; origin: string }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (data: Buffer) => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const target = head.split(' ')[1]!;
      head = '';
      asked.set(target, (asked.get(target) ?? 0) + 1);
      answer(target, socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Sends `request` on a connection of its own and collects the answer until the connection
 * closes (bounded in time): its head, its body bytes as sent, and how the connection ended:
 * 'fin' (a clean end), the error code of a reset ('ECONNRESET'), or 'timeout'.
 */
function exchange(
  url: string,
  request: string,
  tls?: { ca: string; servername: string },
): Promise<{ head: string; body: string; end: string }> {
  const port = Number(new URL(url).port);
  return new Promise((resolve) => {
    const socket =
      tls === undefined
        ? connect(port, '127.0.0.1')
        : tlsConnect({ host: '127.0.0.1', port, ...tls, ALPNProtocols: ['http/1.1'] });
    const chunks: Buffer[] = [];
    let end = 'timeout';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      end = 'fin';
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      end = error.code ?? error.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      resolve({ head: text.slice(0, split), body: text.slice(split + 4), end });
    });
    socket.write(request);
  });
}

describe('truncated origin responses', () => {
  let origin: TestOrigin;
  let edge: TestNode;

  before(async () => {
    origin = await startOrigin({
      '/short-length': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' });
        res.write('only forty bytes of the promised hundred');
        setTimeout(() => res.socket?.destroy(), 20);
      },
      '/short-html': (_req, res) => {
        res.writeHead(200, {
          'cache-control': 'max-age=60',
          'content-type': 'text/html',
          'content-length': '600000',
        });
        res.write(Buffer.alloc(300_000, 'h'));
        setTimeout(() => res.socket?.destroy(), 20);
      },
      '/short-chunked': (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.write('first part, ');
        setTimeout(() => res.socket?.destroy(), 20);
      },
    });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('never says stored on the error a client waiting for a coding of a cut fill gets', async () => {
    const res = await edge.get('/short-html', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 502, 'it waits for the whole body to code it: nothing came');
    assert.doesNotMatch(String(res.headers['cache-status']), /stored/);
    assert.match(String(res.headers['cache-status']), /fwd=miss/);
    assert.equal((await edge.get('/short-html')).complete, false, 'nothing was stored');
  });

  for (const path of ['/short-length', '/short-chunked']) {
    it(`never stores ${path} and lets the client see it cut short`, async () => {
      const first = await edge.get(path);
      assert.equal(first.complete, false, 'the client must not see a clean end');
      const second = await edge.get(path);
      assert.equal(second.complete, false);
      assert.equal(origin.count(path), 2, 'nothing was stored');
      assert.match(String(first.headers['cache-status']), /fwd=miss/);
    });
  }
});

describe('origin responses that are not valid HTTP/1.1', () => {
  /** A raw origin: each path's answer as bytes, written once the request head arrived. */
  const LONG = `/downloads/${'release-notes-'.repeat(9)}latest.txt`;
  const answers: Record<string, string> = {
    [`${LONG}?case=te-gzip`]:
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08coded',
    [`${LONG}?case=te-gzip-chunked`]:
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\n\x1f\x8b\x08ab\r\n0\r\n\r\n',
    [`${LONG}?case=bad-header`]: 'HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok',
    [`${LONG}?case=obs-fold`]: 'HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 2\r\n\r\nok',
    [`${LONG}?case=no-http`]: 'HELLO THERE\r\n\r\n',
    [`${LONG}?case=status-999`]:
      'HTTP/1.1 999 Whatever\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok',
    // Below 100: undici's parser asserts rather than naming the fault; still not a connect failure.
    [`${LONG}?case=status-099`]:
      'HTTP/1.1 099 Weird\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok',
    [`${LONG}?case=huge-header`]: `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100_000)}\r\nContent-Length: 2\r\n\r\nok`,
    // RFC 9112 §6.3: framing that is not valid, not a body cut short by the network.
    [`${LONG}?case=content-length-and-chunked`]:
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    [`${LONG}?case=large-content-length-and-chunked`]: `HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 200000\r\nTransfer-Encoding: chunked\r\n\r\n30d40\r\n${'b'.repeat(200_000)}\r\n0\r\n\r\n`,
    [`${LONG}?case=two-content-lengths`]:
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
    [`${LONG}?case=content-length-list`]:
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2, 3\r\n\r\nok!',
    [`${LONG}?case=101-to-a-get`]:
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes',
  };
  let server: Server;
  let edge: TestNode;
  const asked = new Map<string, number>();

  before(async () => {
    let origin: string;
    ({ server, origin } = await rawOrigin(asked, (target, socket) =>
      socket.end(Buffer.from(answers[target] ?? NOT_FOUND, 'latin1')),
    ));
    edge = await startNode({ origin });
  });
  after(async () => {
    await edge.close();
    await new Promise((resolve) => server.close(resolve));
  });

  for (const target of Object.keys(answers)) {
    const name = target.split('case=')[1];
    it(`answers 502 http_protocol_error to ${name}, stores nothing, and asks the origin again`, async () => {
      for (let i = 1; i <= 2; i++) {
        const res = await edge.get(target);
        assert.equal(res.status, 502, name);
        assert.match(String(res.headers['proxy-status']), /error=http_protocol_error/, name);
        assert.ok(!res.text.includes('\x1f\x8b'), 'no coded byte reaches the client');
      }
      assert.ok((asked.get(target) ?? 0) >= 2, `${name}: nothing stored`);
    });
  }
});

describe('an origin that fails after its head, before any body byte', () => {
  const LONG = `/assets/${'build-artifacts-'.repeat(8)}bundle.js`;
  /** Each case's head; the origin closes the connection `delay` ms after writing it. */
  const heads: Record<string, string> = {
    'length-stored': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5000\r\n\r\n',
    'chunked-stored': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n',
    'length-pass': 'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 5000\r\n\r\n',
    'chunked-pass': 'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n',
    'cut-after-bytes':
      'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5000\r\n\r\nthe first bytes only',
    'cut-after-bytes-pass':
      'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 5000\r\n\r\nthe first bytes only',
    'no-content': 'HTTP/1.1 204 No Content\r\nCache-Control: max-age=60\r\nContent-Length: 0\r\n\r\n',
  };
  let server: Server;
  let edge: TestNode;
  const asked = new Map<string, number>();
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    let origin: string;
    ({ server, origin } = await rawOrigin(asked, (target, socket) => {
      const name = target.split('case=')[1]!;
      socket.write(heads[name] ?? NOT_FOUND);
      if (name !== 'no-content') setTimeout(() => socket.destroy(), 80);
    }));
    const sink = sinkInto(lines);
    edge = await startNode({
      origin,
      logger: pino({ level: 'info' }, sink),
      config: { logging: { level: 'info', access: true } },
    });
  });
  after(async () => {
    await edge.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const logged = (target: string) =>
    lines.filter((line) => line.msg === 'request completed' && line.path === target);

  for (const name of ['length-stored', 'chunked-stored', 'length-pass', 'chunked-pass']) {
    it(`answers 502 http_response_incomplete (${name}), logs why, and stores nothing`, async () => {
      const target = `${LONG}?case=${name}`;
      for (let i = 1; i <= 2; i++) {
        const res = await edge.get(target);
        assert.equal(res.status, 502, 'an answer the client can read, not an empty reply');
        assert.equal(res.complete, true);
        assert.match(String(res.headers['proxy-status']), /error=http_response_incomplete; details="origin"/);
        assert.doesNotMatch(String(res.headers['cache-status']), /stored/);
        // The origin by its configured name, as every origin error names it; what the network
        // said (undici's "other side closed") is for the log only.
        assert.equal(res.text, '502 origin origin response incomplete\n');
      }
      assert.equal(asked.get(target), 2, 'nothing stored');
      const seen = logged(target);
      for (const line of seen) assert.ok(line.errDetail, 'the log keeps the detail');
      assert.deepEqual(
        seen.map((line) => [line.status, line.err]),
        [
          [502, 'EDGE_ERR_ORIGIN_BODY_INCOMPLETE'],
          [502, 'EDGE_ERR_ORIGIN_BODY_INCOMPLETE'],
        ],
      );
    });
  }

  it('answers collapsed followers of such a fill 502 as well', async () => {
    const target = `${LONG}?followers=4&case=length-stored`;
    const answers = await Promise.all([1, 2, 3, 4].map(() => request(`${edge.url}${target}`)));
    await edge.node.idle();
    assert.deepEqual(
      answers.map((res) => [res.status, res.complete]),
      [1, 2, 3, 4].map(() => [502, true]),
    );
    assert.ok((asked.get(target) ?? 0) <= 4);
  });

  it('sends no Content-Length with a 204, relayed, stored or hit (RFC 9110 §8.6)', async () => {
    const target = `${LONG}?case=no-content`;
    const seen = [];
    for (let i = 1; i <= 2; i++) {
      const res = await edge.get(target);
      seen.push([
        res.status,
        res.headers['content-length'],
        String(res.headers['cache-status']).split(';')[1],
      ]);
    }
    assert.deepEqual(seen, [
      [204, undefined, ' fwd=miss'],
      [204, undefined, ' hit'],
    ]);
    assert.equal(asked.get(target), 1);
  });

  for (const name of ['cut-after-bytes', 'cut-after-bytes-pass']) {
    it(`cuts a response short once bytes went out, and logs it with its code (${name})`, async () => {
      const target = `${LONG}?case=${name}`;
      const res = await edge.get(target);
      assert.equal(res.status, 200);
      assert.equal(res.complete, false);
      assert.equal(res.text, 'the first bytes only');
      // The line is written when the response closes, which may come after the client saw the cut.
      for (let i = 0; i < 50 && logged(target).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const [line] = logged(target);
      assert.equal(line?.complete, false);
      assert.equal(line?.err, 'EDGE_ERR_ORIGIN_BODY_INCOMPLETE');
    });
  }
});

describe('an origin whose body runs until the connection closes (no length, no chunks)', () => {
  const LONG = `/feeds/${'legacy-http10-export-'.repeat(6)}items.txt`;
  const BODY = 'line of an HTTP/1.0 feed\n'.repeat(400);
  let server: Server;
  let edge: TestNode;
  const asked = new Map<string, number>();

  before(async () => {
    let origin: string;
    ({ server, origin } = await rawOrigin(asked, (target, socket) => {
      const policy = target.includes('pass') ? 'no-store' : 'max-age=60';
      socket.write(`HTTP/1.0 200 OK\r\nCache-Control: ${policy}\r\nContent-Type: text/plain\r\n\r\n${BODY}`);
      // The body ends with the connection: a FIN is its end, a reset is a body cut short.
      if (target.includes('case=fin')) setTimeout(() => socket.end(), 30);
      else setTimeout(() => socket.resetAndDestroy(), 30);
    }));
    edge = await startNode({ origin });
  });
  after(async () => {
    await edge.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('stores a body ended by the origin closing its side, and serves it whole', async () => {
    const target = `${LONG}?case=fin`;
    const first = await edge.get(target);
    assert.equal(first.status, 200);
    assert.equal(first.complete, true);
    assert.equal(first.text, BODY);
    assert.match(String(first.headers['cache-status']), /fwd=miss;.*stored/);
    const second = await edge.get(target);
    assert.equal(second.text, BODY);
    assert.match(String(second.headers['cache-status']), /hit/);
    assert.equal(asked.get(target), 1);
  });

  for (const kind of ['stored', 'pass']) {
    it(`passes an origin's reset on to an HTTP/1.0 client as a reset, not a clean end (${kind})`, async () => {
      const target = `${LONG}?case=reset-${kind}-http10`;
      for (let i = 1; i <= 2; i++) {
        const { head, end } = await exchange(edge.url, `GET ${target} HTTP/1.0\r\nHost: a.example\r\n\r\n`);
        assert.match(head, /^HTTP\/1\.1 200 /);
        assert.doesNotMatch(head, /content-length|transfer-encoding/i, 'the body is close-delimited');
        assert.equal(end, 'ECONNRESET', 'a FIN would say the body is complete');
      }
      assert.equal(asked.get(target), 2, 'nothing was stored');
    });
  }

  for (const kind of ['stored', 'pass']) {
    it(`never stores a body ended by a reset, and lets the client see it cut short (${kind})`, async () => {
      const target = `${LONG}?case=reset-${kind}`;
      const first = await edge.get(target);
      assert.equal(first.status, 200);
      assert.equal(first.complete, false, 'a reset is no end of the body');
      const second = await edge.get(target);
      assert.equal(second.complete, false);
      assert.doesNotMatch(String(second.headers['cache-status']), /hit/);
      assert.equal(asked.get(target), 2, 'nothing was stored');
    });
  }
});

describe('a body cut short on a close-delimited response (HTTP/1.0 clients)', () => {
  // RFC 9112 §6.3: without Content-Length or chunks the body ends with the connection, so a
  // body cut short must end in a reset, never the FIN of a complete body.
  const LONG = `/exports/${'nightly-catalogue-snapshot-'.repeat(5)}part.csv`;
  const PART = 'x'.repeat(50_000);
  let server: Server;
  let edge: TestNode;
  const asked = new Map<string, number>();

  before(async () => {
    let origin: string;
    ({ server, origin } = await rawOrigin(asked, (target, socket) => {
      const policy = target.includes('pass') ? 'no-store' : 'max-age=60';
      const head = `HTTP/1.1 200 OK\r\nCache-Control: ${policy}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      socket.write(`${head}${PART.length.toString(16)}\r\n${PART}\r\n`);
      // The whole body, or the origin dies mid-body: the last chunk never comes.
      if (target.includes('case=whole')) socket.end('0\r\n\r\n');
      else setTimeout(() => socket.destroy(), 50);
    }));
    edge = await startNode({ origin });
  });
  after(async () => {
    await edge.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const http10 = (target: string) => exchange(edge.url, `GET ${target} HTTP/1.0\r\nHost: a.example\r\n\r\n`);

  it('resets the connection of an HTTP/1.0 client when a passed body is cut short', async () => {
    const target = `${LONG}?case=cut-pass`;
    const { head, body, end } = await http10(target);
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /content-length|transfer-encoding/i, 'the body is close-delimited');
    assert.match(head, /cache-status: .*fwd=miss; fwd-status=200; detail=no-store/i);
    assert.ok(body.length <= PART.length);
    assert.equal(end, 'ECONNRESET', 'a FIN would say the body is complete');
    assert.equal(asked.get(target), 1);
  });

  it('resets the connection of an HTTP/1.0 client when a fill is cut short, and stores nothing', async () => {
    const target = `${LONG}?case=cut-stored`;
    const first = await http10(target);
    assert.match(first.head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(first.head, /content-length|transfer-encoding/i, 'the body is close-delimited');
    assert.match(first.head, /cache-status: .*fwd=miss/i);
    assert.equal(first.end, 'ECONNRESET', 'a FIN would say the body is complete');
    const second = await http10(target);
    assert.match(second.head, /cache-status: .*fwd=miss/i);
    assert.equal(second.end, 'ECONNRESET');
    assert.equal(asked.get(target), 2, 'nothing was stored');
  });

  it('resets the connections of collapsed HTTP/1.0 followers of a fill cut short', async () => {
    const target = `${LONG}?case=cut-stored-followers`;
    const answers = await Promise.all([1, 2, 3].map(() => http10(target)));
    assert.deepEqual(
      answers.map(({ head, end }) => [head.split('\r\n')[0], end]),
      [1, 2, 3].map(() => ['HTTP/1.1 200 OK', 'ECONNRESET']),
    );
    assert.equal(
      answers.filter(({ head }) => /cache-status: .*collapsed/i.test(head)).length,
      2,
      'two followed the first',
    );
    assert.equal(asked.get(target), 1);
  });

  it('ends a whole close-delimited body cleanly, with every byte', async () => {
    const target = `${LONG}?case=whole`;
    for (const lookup of ['fwd=miss', 'hit']) {
      const { head, body, end } = await http10(target);
      assert.equal(end, 'fin');
      assert.match(head, new RegExp(`cache-status: .*${lookup}`, 'i'));
      assert.ok(body === PART, 'every byte, nothing more');
    }
    assert.equal(asked.get(target), 1);
  });

  it('still cuts an HTTP/1.1 chunked body short by its missing last chunk', async () => {
    const target = `${LONG}?case=cut-pass-http11`;
    const { head, body, end } = await exchange(
      edge.url,
      `GET ${target} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n`,
    );
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(head, /\r\ntransfer-encoding: chunked/i);
    assert.ok(body.includes(PART), 'the bytes the origin sent');
    assert.ok(!body.endsWith('0\r\n\r\n'), 'no last chunk');
    assert.equal(end, 'fin', 'the framing shows the cut: the connection closes as before');
  });
});

describe('a body cut short over TLS', () => {
  const LONG = `/exports/${'nightly-catalogue-snapshot-'.repeat(5)}secure.csv`;
  const PART = 'y'.repeat(50_000);
  let fixtures: Fixtures;
  let server: Server;
  let edge: TestNode;
  let base: string;
  const asked = new Map<string, number>();

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    let origin: string;
    ({ server, origin } = await rawOrigin(asked, (target, socket) => {
      if (target === '/small') return void socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      const head = 'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n';
      socket.write(`${head}${PART.length.toString(16)}\r\n${PART}\r\n`);
      setTimeout(() => socket.destroy(), 50);
    }));
    edge = await startNode({
      origin,
      config: { listeners: [{ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key } }] },
    });
    base = `https://${edge.node.addresses[0]}`;
  });
  after(async () => {
    await edge.close();
    await new Promise((resolve) => server.close(resolve));
    fixtures.remove();
  });

  it('resets the TCP connection under an HTTP/1.0 client over TLS', async () => {
    const target = `${LONG}?case=tls-http10`;
    const { head, end } = await exchange(base, `GET ${target} HTTP/1.0\r\nHost: edge.test\r\n\r\n`, {
      ca: fixtures.ca,
      servername: 'edge.test',
    });
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /content-length|transfer-encoding/i, 'the body is close-delimited');
    assert.equal(end, 'ECONNRESET', 'a close without close_notify reads as a clean end to many clients');
  });

  it('resets only the stream on HTTP/2: the connection and its other streams go on', async () => {
    const session = h2connect(base, { ca: fixtures.ca, servername: 'edge.test' });
    session.on('error', () => {});
    try {
      const cut = session.request({ ':path': `${LONG}?case=h2`, ':authority': 'edge.test' });
      cut.on('error', () => {});
      cut.resume();
      const code = await new Promise<number>((resolve) =>
        cut.once('close', () => resolve(cut.rstCode ?? -1)),
      );
      assert.equal(code, 2, 'INTERNAL_ERROR: cut short, never a clean end');
      assert.equal(session.destroyed, false);
      const next = session.request({ ':path': '/small', ':authority': 'edge.test' });
      let body = '';
      next.setEncoding('utf8');
      next.on('data', (data: string) => {
        body += data;
      });
      await new Promise((resolve) => next.once('end', resolve));
      assert.equal(body, 'ok');
    } finally {
      session.close();
    }
  });
});
