/**
 * WebSocket handshakes through the node (docs/origins.md, WebSocket tunnels): a real origin on
 * 127.0.0.1 that answers 101 and echoes bytes, a client on node:net, the real node between.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { until } from '../helpers/wait.ts';

interface WsOrigin {
  readonly url: string;
  /** Handshakes that reached the origin (as upgrades), and plain requests. */
  readonly upgrades: Array<{ path: string; headers: IncomingMessage['headers'] }>;
  readonly requests: Array<{ path: string; headers: IncomingMessage['headers'] }>;
  /** The origin's side of every tunnel it accepted, in order. */
  readonly tunnels: Socket[];
  /** The origin's side of every handshake to `/silent`. */
  readonly silent: Socket[];
  close(): Promise<void>;
}

const LARGE_BODY = 1024 * 1024;

/**
 * Plain requests are answered 200 `plain` (`/slow…` after 300 ms; `/large…` 1 MiB of `a`).
 * `/echo…` answers 101 and echoes every byte (a FIN answered with one); `/refuse` answers 426;
 * `/silent` never answers; `/bye` answers 101, echoes the first piece, then closes; `/no-upgrade`
 * answers 101 without Upgrade, `/other-protocol` 101 with `Upgrade: h2c` (both then echo);
 * `/length` answers 101 with `Content-Length: 5` and 5 bytes after its head, then echoes; `/late`
 * answers 101 after 400 ms, then echoes.
 */
async function startWsOrigin(): Promise<WsOrigin> {
  const upgrades: WsOrigin['upgrades'] = [];
  const requests: WsOrigin['requests'] = [];
  const tunnels: Socket[] = [];
  const silent: Socket[] = [];
  const held = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', headers: req.headers });
    // `/large…` answers 1 MiB at once (more than a socket's buffers take without a drain).
    if (req.url?.startsWith('/large')) {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'cache-control': 'no-store',
        'content-length': LARGE_BODY,
      });
      res.end(Buffer.alloc(LARGE_BODY, 0x61));
      return;
    }
    // `/slow…` answers after 300 ms (a pipelined handshake waits behind it).
    setTimeout(
      () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end('plain\n');
      },
      req.url?.startsWith('/slow') ? 300 : 0,
    );
  });
  server.on('connection', (socket: Socket) => {
    held.add(socket);
    socket.once('close', () => held.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const path = req.url ?? '';
    upgrades.push({ path, headers: req.headers });
    socket.on('error', () => {});
    if (path === '/silent') {
      silent.push(socket);
      socket.on('end', () => socket.end());
      return;
    }
    if (path === '/refuse') {
      const body = 'upgrade refused\n';
      socket.end(
        'HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n' +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    if (path === '/no-upgrade' || path === '/other-protocol') {
      // A 101 that names no protocol, or one the client never asked for.
      const upgrade = path === '/other-protocol' ? 'Upgrade: h2c\r\n' : '';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\n${upgrade}Connection: Upgrade\r\n\r\n`);
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      return;
    }
    if (path === '/late') {
      // 101 after 400 ms, then echoes.
      tunnels.push(socket);
      setTimeout(() => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        socket.on('data', (chunk: Buffer) => socket.write(chunk));
        socket.on('end', () => socket.end());
      }, 400);
      return;
    }
    if (path === '/length') {
      // A 101 that declares a length: the 5 bytes after its head are the tunnel's first.
      tunnels.push(socket);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Content-Length: 5\r\n\r\n\x81\x03hey',
        'latin1',
      );
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      socket.on('end', () => socket.end());
      return;
    }
    tunnels.push(socket);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nServer: hidden/1.0\r\n\r\n',
    );
    if (path === '/bye') {
      socket.once('data', (chunk: Buffer) => socket.end(chunk));
      return;
    }
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    upgrades,
    requests,
    tunnels,
    silent,
    close: () =>
      new Promise((resolve) => {
        for (const socket of held) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Handshake {
  socket: Socket;
  /** The response head, as text. */
  head: string;
  status: number;
  /** Bytes received after the head (the body of a non-101, or tunnel bytes). */
  rest: Buffer;
}

const HANDSHAKE_FIELDS =
  'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\nOrigin: https://chat.example\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n';

/** Sends a handshake and resolves with the response head once it is read (bounded in time). */
function handshake(
  port: number,
  path: string,
  options: { localAddress?: string; fields?: string } = {},
): Promise<Handshake> {
  const socket = connect({
    port,
    host: '127.0.0.1',
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  socket.on('error', () => {});
  const { promise, resolve, reject } = Promise.withResolvers<Handshake>();
  const timer = setTimeout(() => reject(new Error('no response head within 5 s')), 5000);
  let received = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    socket.pause();
    clearTimeout(timer);
    const head = received.subarray(0, end).toString('latin1');
    resolve({ socket, head, status: Number(head.slice(9, 12)), rest: received.subarray(end + 4) });
  };
  socket.on('data', onData);
  socket.once('close', () => {
    clearTimeout(timer);
    reject(new Error(`closed before a response head: ${received.toString('latin1')}`));
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: chat.example\r\n${options.fields ?? HANDSHAKE_FIELDS}\r\n`);
  return promise;
}

/** Reads from a tunnel until `bytes` arrived (bounded in time); `rest` is what came with the head. */
async function readBytes(socket: Socket, bytes: number, rest: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  const chunks = [rest];
  let length = rest.length;
  socket.resume();
  const deadline = Date.now() + 5000;
  while (length < bytes && Date.now() < deadline) {
    const [chunk] = (await Promise.race([
      once(socket, 'data'),
      new Promise((resolve) => setTimeout(resolve, 100, [Buffer.alloc(0)])),
    ])) as [Buffer];
    chunks.push(chunk);
    length += chunk.length;
  }
  return Buffer.concat(chunks);
}

/** Reads what is left until the peer closes (bounded in time). */
async function readToClose(socket: Socket, rest: Buffer): Promise<{ body: string; closed: boolean }> {
  const chunks = [rest];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.resume();
  const closed = socket.closed || (await until(() => socket.closed, 5000));
  return { body: Buffer.concat(chunks).toString('latin1'), closed };
}

function header(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

const portOf = (edge: TestNode) => Number(new URL(edge.url).port);

/**
 * Stops the node with a 100 ms drain grace while the client keeps its connection busy, as an
 * application sending pings does; whether it stopped within `boundMs`. The socket is destroyed after.
 */
async function stopsWhilePinging(edge: TestNode, socket: Socket, boundMs: number): Promise<boolean> {
  const stopped = edge.node.close({ drainMs: 100 });
  const pings = setInterval(() => socket.write('ping'), 50);
  try {
    return await Promise.race([
      stopped.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, boundMs, false)),
    ]);
  } finally {
    clearInterval(pings);
    socket.destroy();
  }
}

describe('WebSocket tunnels', () => {
  let origin: WsOrigin;
  let edge: TestNode;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    origin = await startWsOrigin();
    const sink = sinkInto(lines);
    edge = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sink),
      config: {
        logging: { level: 'info', access: true },
        sites: [{ name: 'chat', hosts: ['*'], origins: ['origin'], security: { deny: ['127.0.0.7'] } }],
      },
    });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('relays the 101 of a handshake to a long URL and carries bytes both ways, a 64 KiB message echoed whole', async () => {
    const path = `/echo/rooms/${'general-discussion-'.repeat(6)}?token=${'a1b2c3d4'.repeat(8)}&v=13`;
    assert.ok(path.length > 100);
    const before = origin.upgrades.length;
    const client = await handshake(portOf(edge), path);
    assert.equal(client.status, 101, client.head);
    assert.equal(header(client.head, 'upgrade'), 'websocket');
    assert.equal(header(client.head, 'connection'), 'Upgrade');
    assert.equal(header(client.head, 'sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(header(client.head, 'server'), undefined, 'hidden response headers stay hidden');
    assert.match(header(client.head, 'cache-status') ?? '', /fwd=bypass; fwd-status=101; detail=upgrade/);
    assert.equal(origin.upgrades.length, before + 1);
    const seen = origin.upgrades.at(-1)!;
    assert.equal(seen.path, path);
    assert.equal(seen.headers.upgrade, 'websocket');
    assert.equal(seen.headers.connection, 'upgrade');
    assert.equal(seen.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers.via, '1.1 strata');
    const hello = Buffer.from('\x81\x05hello', 'latin1');
    client.socket.write(hello);
    assert.deepEqual(await readBytes(client.socket, hello.length, client.rest), hello);
    const big = Buffer.alloc(64 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    client.socket.write(big);
    const echoed = await readBytes(client.socket, big.length);
    assert.equal(echoed.length, big.length);
    assert.ok(echoed.equals(big), 'the 64 KiB message came back byte for byte');
    client.socket.destroy();
  });

  it('ends the origin side when the client closes, and writes the access line with bytes each way', async () => {
    const client = await handshake(portOf(edge), '/echo/close-by-client');
    assert.equal(client.status, 101);
    const originSide = origin.tunnels.at(-1)!;
    client.socket.write('0123456789');
    await readBytes(client.socket, 10, client.rest);
    client.socket.destroy();
    assert.ok(await until(() => originSide.closed, 3000), 'the origin side closed with the client');
    assert.ok(await until(() => edge.node.edge.tunnels.open.size === 0, 3000));
    const line = await waitForLine(lines, (l) => l.path === '/echo/close-by-client');
    assert.equal(line.status, 101);
    assert.equal(line.bytes, 10);
    assert.equal(line.clientBytes, 10);
    assert.equal(line.closedBy, 'client');
    assert.equal(line.cache, 'bypass');
    assert.equal(typeof line.ms, 'number');
  });

  it('closes the client when the origin closes mid-tunnel', async () => {
    const client = await handshake(portOf(edge), '/bye');
    assert.equal(client.status, 101);
    client.socket.write('last words');
    const { body, closed } = await readToClose(client.socket, client.rest);
    assert.equal(body, 'last words');
    assert.ok(closed, 'the client connection closed after the origin did');
    const line = await waitForLine(lines, (l) => l.path === '/bye');
    assert.equal(line.closedBy, 'origin');
  });

  it('passes a half-close on: the client stops sending, the origin still answers, then both close', async () => {
    const client = await handshake(portOf(edge), '/echo/half');
    assert.equal(client.status, 101);
    client.socket.end('after which nothing');
    const { body, closed } = await readToClose(client.socket, client.rest);
    assert.equal(body, 'after which nothing');
    assert.ok(closed);
    assert.ok(await until(() => origin.tunnels.at(-1)!.closed, 3000));
  });

  it('relays a 101 without the Content-Length it must not carry; the bytes after its head open the tunnel', async () => {
    const client = await handshake(portOf(edge), '/length');
    assert.equal(client.status, 101, client.head);
    assert.equal(header(client.head, 'content-length'), undefined, 'RFC 9110 §8.6: none on a 1xx');
    assert.equal(header(client.head, 'upgrade'), 'websocket');
    const first = await readBytes(client.socket, 5, client.rest);
    assert.equal(first.toString('latin1'), '\x81\x03hey');
    client.socket.write('echoed');
    assert.equal((await readBytes(client.socket, 6)).toString(), 'echoed');
    client.socket.destroy();
  });

  it('relays a refusal (426) as a response, never stored: each handshake reaches the origin', async () => {
    const before = origin.upgrades.length;
    for (let i = 0; i < 2; i++) {
      const client = await handshake(portOf(edge), '/refuse');
      assert.equal(client.status, 426);
      assert.match(header(client.head, 'cache-status') ?? '', /fwd=bypass; fwd-status=426; detail=upgrade/);
      assert.doesNotMatch(header(client.head, 'cache-status') ?? '', /stored|hit/);
      assert.equal(header(client.head, 'connection'), 'close');
      const { body, closed } = await readToClose(client.socket, client.rest);
      assert.equal(body, 'upgrade refused\n');
      assert.ok(closed, 'the connection ends after a handshake that was not switched');
    }
    assert.equal(origin.upgrades.length, before + 2);
    // A plain GET of the same URL is not answered by anything the handshakes left.
    const plain = await edge.get('/refuse');
    assert.equal(plain.headers['cache-status'], 'strata; fwd=miss; fwd-status=200; stored');
  });

  it('writes the whole answer of a request pipelined before a handshake before the 101, then tunnels', async () => {
    const path = `/slow/articles/${'pipelined-before-upgrade-'.repeat(5)}?page=2&session=${'f00d'.repeat(10)}`;
    assert.ok(path.length > 100);
    const before = origin.requests.length;
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = () => Buffer.concat(chunks).toString('latin1');
    // Both requests in one write: node:http reads the handshake while the first is at the origin.
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: chat.example\r\nAccept: text/html\r\n\r\n` +
        `GET /echo/pipelined HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    assert.ok(
      await until(() => /\r\n\r\n[\s\S]*HTTP\/1\.1 101[\s\S]*\r\n\r\n/.test(received()), 5000),
      `a 200 then a 101: ${received()}`,
    );
    const text = received();
    const switched = text.indexOf('HTTP/1.1 101 Switching Protocols\r\n');
    const answer = text.slice(0, switched);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(
      answer,
      /\r\ntransfer-encoding: chunked\r\n\r\n6\r\nplain\n\r\n0\r\n\r\n$/i,
      'whole before the 101',
    );
    assert.equal(origin.requests.length, before + 1);
    assert.equal(origin.requests.at(-1)!.path, path);
    const rest = Buffer.from(text.slice(text.indexOf('\r\n\r\n', switched) + 4), 'latin1');
    socket.write('through the tunnel');
    assert.equal((await readBytes(socket, 18, rest)).toString(), 'through the tunnel');
    socket.destroy();
    assert.ok(await until(() => edge.node.edge.tunnels.open.size === 0, 3000));
  });

  it('writes a large answer pipelined before a handshake whole (the socket drains), then tunnels', async () => {
    const path = `/large/downloads/${'pipelined-large-before-upgrade-'.repeat(4)}?build=${'c0ffee'.repeat(8)}`;
    assert.ok(path.length > 100);
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = () => Buffer.concat(chunks).toString('latin1');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: chat.example\r\n\r\n` +
        `GET /echo/pipelined-large HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    // Before, node:http took its drain listener off the socket with the handshake: the answer
    // waited for a 'drain' that never came, stuck after its first 64 KiB, and the 101 never left.
    const whole = await until(() => /HTTP\/1\.1 101[\s\S]*\r\n\r\n/.test(received()), 5000);
    const text = received();
    assert.ok(whole, `a 200 then a 101, got ${text.length} bytes`);
    const switched = text.indexOf('HTTP/1.1 101 Switching Protocols\r\n');
    const answer = text.slice(0, switched);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /\r\ncache-status: strata; fwd=miss; fwd-status=200; detail=no-store\r\n/i);
    const body = Buffer.from(answer.slice(answer.indexOf('\r\n\r\n') + 4), 'latin1');
    assert.equal(answer.match(/\r\ncontent-length: (\d+)\r\n/i)?.[1], String(LARGE_BODY));
    assert.equal(body.length, LARGE_BODY);
    assert.ok(body.equals(Buffer.alloc(LARGE_BODY, 0x61)));
    assert.equal(origin.requests.filter((request) => request.path === path).length, 1);
    const rest = Buffer.from(text.slice(text.indexOf('\r\n\r\n', switched) + 4), 'latin1');
    socket.write('after a large answer');
    assert.equal((await readBytes(socket, 20, rest)).toString(), 'after a large answer');
    socket.destroy();
    assert.ok(await until(() => edge.node.edge.tunnels.open.size === 0, 3000));
  });

  it('still answers a request pipelined before a handshake when the client then half-closes; the handshake is dropped', async () => {
    const before = origin.upgrades.length;
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const path = `/slow/half-closed/${'before-handshake-'.repeat(5)}`;
    socket.end(
      `GET ${path} HTTP/1.1\r\nHost: chat.example\r\n\r\n` +
        `GET /echo/half-closed HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    const { body, closed } = await readToClose(socket, Buffer.alloc(0));
    assert.match(body, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n6\r\nplain\n\r\n0\r\n\r\n$/, body);
    assert.ok(closed, 'the connection closed after the answer');
    assert.equal(
      origin.upgrades.length,
      before,
      'the handshake of a client that left never reached the origin',
    );
  });

  it('refuses 400 a handshake that declares content, without asking the origin (it could not be framed)', async () => {
    const before = origin.upgrades.length;
    for (const framing of ['Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n']) {
      const socket = connect(portOf(edge), '127.0.0.1');
      socket.on('error', () => {});
      const body = framing.startsWith('Content') ? 'hello' : '5\r\nhello\r\n0\r\n\r\n';
      socket.write(
        `GET /echo/with-content HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}${framing}\r\n${body}`,
      );
      const { body: answer, closed } = await readToClose(socket, Buffer.alloc(0));
      assert.match(answer, /^HTTP\/1\.1 400 /, answer);
      assert.match(answer, /\r\n\r\n400 a WebSocket handshake carries no content\n$/);
      assert.ok(closed, 'the connection ends after the refusal');
    }
    assert.equal(origin.upgrades.length, before, 'the origin was never asked');
    // An empty declared length is no content: the handshake goes on.
    const client = await handshake(portOf(edge), '/echo/empty-length', {
      fields: `${HANDSHAKE_FIELDS}Content-Length: 0\r\n`,
    });
    assert.equal(client.status, 101);
    assert.equal(origin.upgrades.at(-1)!.headers['content-length'], '0');
    client.socket.destroy();
  });

  it('refuses a denied address 403 without asking the origin', async () => {
    const before = origin.upgrades.length;
    const client = await handshake(portOf(edge), '/echo/denied', { localAddress: '127.0.0.7' });
    assert.equal(client.status, 403);
    assert.ok((await readToClose(client.socket, client.rest)).closed);
    assert.equal(origin.upgrades.length, before);
  });

  it('asks the origin for websocket alone when the client offers other protocols too', async () => {
    // The node tunnels websocket only: an origin free to pick h2c from the list would have it
    // answered 502 (a switch the node does not relay).
    const fields = HANDSHAKE_FIELDS.replace('Upgrade: websocket', 'Upgrade: h2c, WebSocket');
    const client = await handshake(portOf(edge), '/echo/offered', { fields });
    assert.equal(client.status, 101);
    assert.equal(origin.upgrades.at(-1)!.headers.upgrade, 'WebSocket');
    client.socket.destroy();
  });

  it('leaves other upgrades (h2c) to the plain request path, as before', async () => {
    const before = origin.requests.length;
    const client = await handshake(portOf(edge), '/h2c-page', {
      fields:
        'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n',
    });
    assert.equal(client.status, 200);
    assert.equal(origin.requests.length, before + 1);
    assert.equal(origin.requests.at(-1)!.headers.upgrade, undefined);
    client.socket.destroy();
  });

  it('counts tunnels in the metrics: the open gauge, opened and declined handshakes, bytes', async () => {
    const client = await handshake(portOf(edge), '/echo/metered');
    const text = async () => edge.node.metrics.registry.metrics();
    assert.match(await text(), /^strata_tunnels_open 1$/m);
    assert.match(await text(), /^strata_tunnels_total\{outcome="declined"\} 2$/m);
    client.socket.destroy();
    assert.ok(await until(async () => /^strata_tunnels_open 0$/m.test(await text()), 3000));
    assert.match(await text(), /^strata_tunnels_total\{outcome="opened"\} ([4-9]|1[0-9])$/m);
    assert.match(await text(), /^strata_tunnel_bytes_total\{direction="to-client"\} \d{5,}$/m);
  });
});

async function waitForLine(
  lines: Array<Record<string, unknown>>,
  match: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const found = () => lines.find((l) => l.msg === 'request completed' && match(l));
  assert.ok(await until(() => found() !== undefined, 3000), 'the access line was written');
  return found()!;
}

describe('WebSocket tunnel limits and failures', () => {
  let origin: WsOrigin;
  before(async () => {
    origin = await startWsOrigin();
  });
  after(async () => {
    await origin.close();
  });

  it('answers 503 past proxy.maxTunnels, with the node error, and admits again once one closes', async () => {
    const edge = await startNode({ origin: origin.url, config: { proxy: { maxTunnels: 1 } } });
    try {
      const first = await handshake(portOf(edge), '/echo/one');
      assert.equal(first.status, 101);
      const before = origin.upgrades.length;
      const second = await handshake(portOf(edge), '/echo/two');
      assert.equal(second.status, 503);
      assert.equal(header(second.head, 'proxy-status'), 'strata; error=connection_limit_reached');
      const { body, closed } = await readToClose(second.socket, second.rest);
      assert.equal(body, '503 too many WebSocket connections; retry later\n');
      assert.ok(closed);
      assert.equal(origin.upgrades.length, before, 'the refused handshake never reached the origin');
      assert.match(
        await edge.node.metrics.registry.metrics(),
        /^strata_tunnels_total\{outcome="refused"\} 1$/m,
      );
      first.socket.destroy();
      assert.ok(await until(() => edge.node.edge.tunnels.open.size === 0, 3000));
      const third = await handshake(portOf(edge), '/echo/three');
      assert.equal(third.status, 101);
      third.socket.destroy();
    } finally {
      await edge.close();
    }
  });

  it('closes both sides of a tunnel idle for proxy.tunnelIdleTimeout', async () => {
    const edge = await startNode({ origin: origin.url, config: { proxy: { tunnelIdleTimeout: '300ms' } } });
    try {
      const client = await handshake(portOf(edge), '/echo/idle');
      assert.equal(client.status, 101);
      const originSide = origin.tunnels.at(-1)!;
      const started = Date.now();
      assert.ok((await readToClose(client.socket, client.rest)).closed, 'the client side closed');
      assert.ok(Date.now() - started >= 250, 'not before the idle timeout');
      assert.ok(await until(() => originSide.closed, 3000), 'the origin side closed');
    } finally {
      await edge.close();
    }
  });

  it('opens a tunnel to an origin whose timeouts are days long', async () => {
    const slow = { connectTimeout: '30d', responseTimeout: '30d' };
    const edge = await startNode({
      origin: origin.url,
      config: { origins: [{ name: 'origin', url: origin.url, ...slow }] },
    });
    try {
      const client = await handshake(portOf(edge), '/echo/days');
      assert.equal(client.status, 101, client.head);
      client.socket.write('still here');
      assert.equal((await readBytes(client.socket, 10, client.rest)).toString(), 'still here');
      client.socket.destroy();
      // A plain request to the same origin, for comparison.
      assert.equal((await edge.get('/plain/days')).status, 200);
    } finally {
      await edge.close();
    }
  });

  it('answers 502 when the origin refuses the connection', async () => {
    const closed = await startWsOrigin();
    const url = closed.url;
    await closed.close();
    const edge = await startNode({ origin: url });
    try {
      const client = await handshake(portOf(edge), '/echo/refused');
      assert.equal(client.status, 502);
      assert.equal(header(client.head, 'proxy-status'), 'strata; error=connection_refused; details="origin"');
      assert.ok((await readToClose(client.socket, client.rest)).closed);
      assert.match(
        await edge.node.metrics.registry.metrics(),
        /^strata_tunnels_total\{outcome="failed"\} 1$/m,
      );
    } finally {
      await edge.close();
    }
  });

  it('answers 502 to a 101 that switches to no protocol or to one the client did not ask for', async () => {
    const edge = await startNode({ origin: origin.url });
    try {
      for (const path of ['/no-upgrade', '/other-protocol']) {
        const client = await handshake(portOf(edge), path);
        assert.equal(client.status, 502, client.head);
        assert.equal(
          header(client.head, 'proxy-status'),
          'strata; error=http_protocol_error; details="origin"',
        );
        const { body, closed } = await readToClose(client.socket, client.rest);
        assert.equal(body, '502 origin origin sent an invalid response\n');
        assert.ok(closed, 'the connection ends after the refusal');
      }
      const text = await edge.node.metrics.registry.metrics();
      assert.match(text, /^strata_tunnels_total\{outcome="failed"\} 2$/m);
      assert.doesNotMatch(text, /^strata_tunnels_total\{outcome="opened"\}/m);
      assert.match(text, /^strata_tunnels_open 0$/m);
    } finally {
      await edge.close();
    }
  });

  it('answers 504 when the origin never answers the handshake within its response timeout', async () => {
    const edge = await startNode({
      origin: origin.url,
      config: { origins: [{ name: 'origin', url: origin.url, responseTimeout: '400ms' }] },
    });
    try {
      const client = await handshake(portOf(edge), '/silent');
      assert.equal(client.status, 504);
      assert.equal(
        header(client.head, 'proxy-status'),
        'strata; error=http_response_timeout; details="origin"',
      );
      client.socket.destroy();
    } finally {
      await edge.close();
    }
  });

  it('drops the origin handshake when the client leaves before the origin answers', async () => {
    const edge = await startNode({ origin: origin.url });
    try {
      const before = origin.upgrades.length;
      const socket = connect(portOf(edge), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`GET /silent HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`);
      assert.ok(await until(() => origin.upgrades.length === before + 1, 3000));
      const originSide = origin.silent.at(-1)!;
      socket.destroy();
      assert.ok(
        await until(() => edge.node.edge.tunnels.pending.size === 0, 3000),
        'the handshake was dropped',
      );
      assert.ok(await until(() => originSide.closed, 3000), 'its origin connection closed');
      // The client left: not counted as an origin that failed to answer.
      const metrics = await edge.node.metrics.registry.metrics();
      assert.match(metrics, /^strata_tunnels_total\{outcome="abandoned"\} 1$/m);
      assert.doesNotMatch(metrics, /outcome="failed"/);
    } finally {
      await edge.close();
    }
  });

  it('forwards the handshake as a plain GET with proxy.websockets off, as before', async () => {
    const edge = await startNode({ origin: origin.url, config: { proxy: { websockets: false } } });
    try {
      const before = origin.upgrades.length;
      const client = await handshake(portOf(edge), '/echo/off');
      assert.equal(client.status, 200);
      assert.equal(origin.upgrades.length, before);
      client.socket.destroy();
    } finally {
      await edge.close();
    }
  });

  it('stops within the drain grace when a handshake is still at the origin, opening no tunnel after it', async () => {
    const edge = await startNode({ origin: origin.url });
    const before = origin.upgrades.length;
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(`GET /late HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`);
    assert.ok(await until(() => origin.upgrades.length === before + 1, 3000));
    const started = Date.now();
    assert.ok(await stopsWhilePinging(edge, socket, 3000), 'the node stopped within 3 s');
    assert.ok(Date.now() - started < 2500);
    assert.doesNotMatch(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 101/, 'no tunnel opened');
    assert.equal(edge.node.edge.tunnels.open.size, 0);
    await edge.close();
  });

  it('opens no tunnel for a handshake pipelined behind an answer that ends after the node began to stop', async () => {
    const edge = await startNode({ origin: origin.url });
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const before = origin.requests.length;
    // The first answer takes 300 ms at the origin; the handshake waits behind it.
    socket.write(
      `GET /slow/closing-page HTTP/1.1\r\nHost: chat.example\r\n\r\n` +
        `GET /echo/after-close HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    assert.ok(await until(() => origin.requests.length === before + 1, 3000));
    const started = Date.now();
    assert.ok(await stopsWhilePinging(edge, socket, 4000), 'the node stopped within 4 s');
    assert.ok(Date.now() - started < 3500);
    assert.doesNotMatch(Buffer.concat(chunks).toString('latin1'), /HTTP\/1\.1 101/, 'no tunnel opened');
    assert.equal(edge.node.edge.tunnels.open.size, 0);
    await edge.close();
  });

  it('writes the access line of a handshake answered 503 at shutdown before the node stops', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const edge = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sinkInto(lines)),
      config: { logging: { level: 'info', access: true } },
    });
    const path = `/echo/stopping/${'notifications-'.repeat(8)}?session=${'a1b2c3d4e5'.repeat(4)}`;
    // A client slow to close its side after the answer (node:http no longer tracks the connection).
    const socket = connect({ port: portOf(edge), host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const before = origin.requests.length;
    socket.write(
      `GET /slow/stopping-page HTTP/1.1\r\nHost: chat.example\r\n\r\n` +
        `GET ${path} HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    assert.ok(await until(() => origin.requests.length === before + 1, 3000));
    await edge.node.close({ drainMs: 3000 });
    socket.destroy();
    const answers = [
      ...Buffer.concat(chunks)
        .toString('latin1')
        .matchAll(/HTTP\/1\.1 (\d+)/g),
    ];
    assert.deepEqual(
      answers.map((m) => m[1]),
      ['200', '503'],
    );
    const stopped = lines.findIndex((l) => l.msg === 'edge node stopped');
    const line = lines.findIndex((l) => l.msg === 'request completed' && l.path === path);
    assert.ok(
      line >= 0 && line < stopped,
      `the handshake's line before "edge node stopped": ${line}, ${stopped}`,
    );
    assert.equal(lines[line]!.status, 503);
    assert.equal(lines[line]!.err, 'EDGE_ERR_TUNNEL_LIMIT');
    await edge.close();
  });

  it('closes a tunnel a pipelined handshake opens while the node stops, its access line written first', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const edge = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sinkInto(lines)),
      config: { logging: { level: 'info', access: true } },
    });
    const socket = connect(portOf(edge), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const before = origin.upgrades.length;
    // Answered at once; the handshake behind it reaches the origin, which answers 101 400 ms later.
    socket.write(
      `GET /plain/${'dashboard-'.repeat(10)}.html HTTP/1.1\r\nHost: chat.example\r\n\r\n` +
        `GET /late HTTP/1.1\r\nHost: chat.example\r\n${HANDSHAKE_FIELDS}\r\n`,
    );
    assert.ok(await until(() => origin.upgrades.length === before + 1, 3000));
    const started = Date.now();
    await edge.node.close({ drainMs: 1500 });
    assert.ok(Date.now() - started >= 1200, `the tunnel had the drain grace: ${Date.now() - started} ms`);
    assert.match(Buffer.concat(chunks).toString('latin1'), /HTTP\/1\.1 101/);
    const stopped = lines.findIndex((l) => l.msg === 'edge node stopped');
    const line = lines.findIndex((l) => l.msg === 'request completed' && l.path === '/late');
    assert.ok(
      line >= 0 && line < stopped,
      `the tunnel's line before "edge node stopped": ${line}, ${stopped}`,
    );
    assert.equal(lines[line]!.status, 101);
    assert.equal(lines[line]!.closedBy, 'shutdown');
    assert.equal(edge.node.edge.tunnels.open.size, 0);
    assert.ok(await until(() => socket.destroyed || socket.readableEnded, 3000), 'the client side closed');
    socket.destroy();
    await edge.close();
  });

  it('closes open tunnels when the node stops, after the drain grace, their access lines written first', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const edge = await startNode({
      origin: origin.url,
      logger: pino({ level: 'info' }, sinkInto(lines)),
      config: { logging: { level: 'info', access: true } },
    });
    const path = `/echo/drain/${'subscription-'.repeat(8)}?channel=${'prices-eu-'.repeat(4)}`;
    const client = await handshake(portOf(edge), path);
    assert.equal(client.status, 101);
    const originSide = origin.tunnels.at(-1)!;
    client.socket.write('0123456789');
    await readBytes(client.socket, 10, client.rest);
    const started = Date.now();
    await edge.node.close({ drainMs: 300 });
    assert.ok(Date.now() - started >= 250, 'the tunnel had the drain grace');
    const stopped = lines.findIndex((l) => l.msg === 'edge node stopped');
    const line = lines.findIndex((l) => l.msg === 'request completed' && l.path === path);
    assert.ok(
      line >= 0 && line < stopped,
      `the tunnel's line before "edge node stopped": ${line}, ${stopped}`,
    );
    assert.equal(lines[line]!.closedBy, 'shutdown');
    assert.equal(lines[line]!.bytes, 10);
    assert.equal(lines[line]!.clientBytes, 10);
    assert.ok((await readToClose(client.socket, Buffer.alloc(0))).closed, 'the client side closed');
    assert.ok(await until(() => originSide.closed, 3000), 'the origin side closed');
    await edge.close();
  });
});
