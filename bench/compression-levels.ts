/**
 * CPU to compress a 100 KiB JSON document at the levels an operator may pick (node:zlib's
 * synchronous calls, so the process's CPU time is the compression's): what a fill adds for its
 * coding (docs/compression.md, Levels). Median of 9 rounds of 20 compressions each.
 *
 *   node bench/compression-levels.ts
 */
import { brotliCompressSync, constants, gzipSync, zstdCompressSync } from 'node:zlib';

const items = Array.from({ length: 900 }, (_, i) => ({
  id: i,
  sku: `SKU-${100000 + i}`,
  name: `Product number ${i} with a descriptive name`,
  price: (i * 3.7) % 500,
  tags: ['a', 'b', `t${i % 17}`],
  stock: i % 13,
}));
const json = Buffer.from(JSON.stringify({ items })).subarray(0, 100 * 1024);

const brotli = (quality: number) => () =>
  brotliCompressSync(json, {
    params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: json.length },
  });
const runs: Record<string, () => Buffer> = {
  'gzip 1 (default)': () => gzipSync(json, { level: 1 }),
  'gzip 3': () => gzipSync(json, { level: 3 }),
  'gzip 5': () => gzipSync(json, { level: 5 }),
  'br 1 (default)': brotli(1),
  'br 2': brotli(2),
  'br 4': brotli(4),
  'zstd 3 (default)': () => zstdCompressSync(json, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }),
};

const ROUNDS = 9;
const PER_ROUND = 20;
for (const [name, run] of Object.entries(runs)) {
  for (let i = 0; i < PER_ROUND; i++) run();
  const times: number[] = [];
  let size = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) size = run().length;
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / PER_ROUND / 1000);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(ROUNDS / 2)]!;
  process.stdout.write(`${name.padEnd(18)} ${median.toFixed(3)} ms CPU per 100 KiB, ${size} bytes\n`);
}
