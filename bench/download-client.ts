/**
 * Downloads one URL, discarding the body, and prints one JSON line: status, bytes, ms, the
 * response's cache status header. Used for the 1 GiB object of the `large` scenario.
 *
 *   node bench/download-client.ts --url http://127.0.0.1:8080/large/1g [--timeout-ms 120000]
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    'timeout-ms': { type: 'string', default: '120000' },
  },
});
const timeoutMs = Number(values['timeout-ms']);
const startedAt = process.hrtime.bigint();

const request = http.get(values.url ?? '', { agent: false }, (res) => {
  let bytes = 0;
  res.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  const finish = (error: string | null): void => {
    const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
    const cacheStatus = res.headers['cache-status'] ?? res.headers['x-cache'] ?? null;
    const expected = Number(res.headers['content-length'] ?? Number.NaN);
    const summary = { status: res.statusCode, bytes, expected, ms, cacheStatus, error };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exit(0);
  };
  res.once('end', () => finish(null));
  res.once('error', (error) => finish(error.message));
  res.once('aborted', () => finish('aborted'));
});
request.on('error', (error) => {
  process.stdout.write(`${JSON.stringify({ status: null, bytes: 0, error: error.message })}\n`);
  process.exit(0);
});
setTimeout(() => {
  process.stdout.write(
    `${JSON.stringify({ status: null, bytes: 0, error: `timed out after ${timeoutMs} ms` })}\n`,
  );
  process.exit(1);
}, timeoutMs).unref();
