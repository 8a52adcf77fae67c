import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from '../helpers/http.ts';
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
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
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
