import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

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
  };
  let server: Server;
  let edge: TestNode;
  const asked = new Map<string, number>();

  before(async () => {
    server = createServer((socket) => {
      socket.on('error', () => {});
      let head = '';
      socket.on('data', (data: Buffer) => {
        head += data.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const target = head.split(' ')[1]!;
        asked.set(target, (asked.get(target) ?? 0) + 1);
        socket.end(
          Buffer.from(answers[target] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1'),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    edge = await startNode({ origin: `http://127.0.0.1:${port}` });
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
