/**
 * The thundering herd: opens N connections first, then sends the same GET on all of them in
 * one go, and times each response (`Connection: close`, so the end of the stream is the end of
 * the response). Prints one JSON line: statuses, errors, p50/p99/max in ms.
 *
 *   node bench/herd-client.ts --port 8080 --path /slow/herd/1k --n 1000 [--timeout-ms 20000]
 */

import net from 'node:net';
import { parseArgs } from 'node:util';
import { percentile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    path: { type: 'string', default: '/' },
    n: { type: 'string', default: '1000' },
    'timeout-ms': { type: 'string', default: '20000' },
  },
});
const n = Number(values.n);
const timeoutMs = Number(values['timeout-ms']);
const port = Number(values.port);

interface Outcome {
  status: number | null;
  ms: number | null;
  error: string | null;
}

function connect(): Promise<net.Socket | Error> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: values.host, port });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error) => resolve(error));
  });
}

function exchange(socket: net.Socket, request: Buffer, startedAt: bigint): Promise<Outcome> {
  return new Promise((resolve) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.length < 64) head += chunk.subarray(0, 64).toString('latin1');
    });
    socket.once('error', (error) => resolve({ status: null, ms: null, error: error.message }));
    socket.once('end', () => {
      const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: match === null ? null : Number(match[1]), ms, error: match ? null : 'no status' });
      socket.destroy();
    });
    socket.write(request);
  });
}

async function main(): Promise<void> {
  const giveUp = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ error: `timed out after ${timeoutMs} ms` })}\n`);
    process.exit(1);
  }, timeoutMs);
  const sockets = await Promise.all(Array.from({ length: n }, connect));
  const open = sockets.filter((s): s is net.Socket => s instanceof net.Socket);
  const request = Buffer.from(
    `GET ${values.path} HTTP/1.1\r\nHost: ${values.host}:${port}\r\nConnection: close\r\n\r\n`,
  );
  const startedAt = process.hrtime.bigint();
  const outcomes = await Promise.all(open.map((socket) => exchange(socket, request, startedAt)));
  clearTimeout(giveUp);
  const statuses: Record<string, number> = {};
  const times: number[] = [];
  let errors = n - open.length;
  for (const outcome of outcomes) {
    if (outcome.status !== null) statuses[outcome.status] = (statuses[outcome.status] ?? 0) + 1;
    if (outcome.error !== null || outcome.status !== 200) errors++;
    if (outcome.ms !== null) times.push(outcome.ms);
  }
  times.sort((a, b) => a - b);
  const summary = {
    n,
    connected: open.length,
    statuses,
    errors,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    maxMs: times.at(-1) ?? null,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
