/**
 * What a hit's read of the memory tier costs (src/cache/memory-tier.ts) as the tier holds more
 * bodies: one hot body read again and again among N others, and reads spread over 100 hot
 * bodies, in one process. A tier that moves every body it reads to the newest end of its Map
 * (delete, then set) leaves a deleted copy of a hot key in that key's hash chain at every read,
 * and the chain is walked by the next read until the table is rebuilt: the cost of a read then
 * grows with the number of bodies held.
 *
 *   node bench/memory-tier.ts [--reads 200000]
 */
import { parseArgs } from 'node:util';
import { MemoryTier } from '../src/cache/memory-tier.ts';

const { values } = parseArgs({ options: { reads: { type: 'string', default: '200000' } } });
const reads = Number(values.reads);
if (!Number.isInteger(reads) || reads < 1000 || reads > 10_000_000)
  throw new Error('--reads: 1000 to 10,000,000');

const BODY = Buffer.alloc(16);

function filled(count: number): MemoryTier {
  const tier = new MemoryTier(count * BODY.length, BODY.length);
  // Body ids as the store makes them: time, a per-process prefix, a counter.
  for (let i = 0; i < count; i++) tier.set(`mx7heady.q3v9x${i.toString(36)}`, BODY);
  return tier;
}

/** ns per get over `reads` reads of `ids` in turn (after a warm-up of a tenth as many). */
function timeReads(tier: MemoryTier, ids: readonly string[]): number {
  let held = 0;
  for (let i = 0; i < reads / 10; i++) if (tier.get(ids[i % ids.length]!) !== undefined) held++;
  const start = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) if (tier.get(ids[i % ids.length]!) !== undefined) held++;
  const ns = Number(process.hrtime.bigint() - start) / reads;
  if (held !== reads + reads / 10) throw new Error('a read body was missing');
  return ns;
}

const rows: string[] = [
  '| bodies held | one hot body, ns per read | 100 hot bodies, ns per read |',
  '| ---: | ---: | ---: |',
];
for (const count of [2, 500, 2000, 20_000]) {
  const hot = `mx7heady.q3v9x${Math.floor(count / 2).toString(36)}`;
  const spread = Array.from(
    { length: Math.min(100, count) },
    (_, i) => `mx7heady.q3v9x${Math.floor((i * count) / Math.min(100, count)).toString(36)}`,
  );
  const one = timeReads(filled(count), [hot]);
  const many = timeReads(filled(count), spread);
  rows.push(`| ${count.toLocaleString('en-US')} | ${one.toFixed(1)} | ${many.toFixed(1)} |`);
}
process.stdout.write(`${rows.join('\n')}\n`);
