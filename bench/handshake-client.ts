/**
 * TLS handshakes per second: `--concurrency` loops, each opening a TLS connection, sending one
 * GET, reading the answer and closing, for `--duration` seconds. With `--resume`, every loop
 * offers the session (ticket) of its previous connection, so after the first one each handshake
 * is a resumption. Prints one JSON line: handshakes, resumed, errors, rate.
 *
 *   node bench/handshake-client.ts --port 8443 --path /1k --duration 5 [--resume] [--concurrency 8]
 */
import { connect } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    path: { type: 'string', default: '/1k' },
    duration: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    resume: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const request = Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n`);

function once(
  session: Buffer | undefined,
): Promise<{ ok: boolean; resumed: boolean; session: Buffer | undefined }> {
  return new Promise((resolve) => {
    let ticket = session;
    const socket = connect({
      host: values.host,
      port,
      servername: 'bench.test',
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(session ? { session } : {}),
    });
    socket.on('session', (s: Buffer) => {
      ticket = s;
    });
    let resumed = false;
    let bytes = 0;
    socket.once('secureConnect', () => {
      resumed = socket.isSessionReused();
      socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.once('error', () => resolve({ ok: false, resumed: false, session: undefined }));
    socket.once('close', () => resolve({ ok: bytes > 0, resumed, session: ticket }));
  });
}

const end = performance.now() + Number(values.duration) * 1000;
let handshakes = 0;
let resumed = 0;
let errors = 0;
async function loop(): Promise<void> {
  let session: Buffer | undefined;
  while (performance.now() < end) {
    const result = await once(values.resume ? session : undefined);
    if (!result.ok) errors++;
    else {
      handshakes++;
      if (result.resumed) resumed++;
    }
    session = result.session;
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: Number(values.concurrency) }, loop));
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ handshakes, resumed, errors, seconds, rate: handshakes / seconds })}\n`,
);
