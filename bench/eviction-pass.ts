/**
 * One eviction pass over a large cache: how long it takes and how much memory it holds, with
 * `--entries` variants (default 100,000) in a real LMDB directory in a temp folder. The cache is
 * filled, half of it touched again in random order (access times flushed as the node does), and
 * a pass evicts from 90 % down to 80 % of maxSize (about 11 % of the entries), as the background
 * pass does (`--share 0.005`: one batch, which shows what a pass costs before it evicts anything). Besides the pass's time and heap growth it reports the longest the event loop
 * was blocked during the pass (hits wait that long). Repeated `--rounds` times (the evicted entries written again in between); the median
 * is printed.
 *
 *   node --expose-gc bench/eviction-pass.ts [--entries 100000] [--rounds 5] [--share 0.111]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Evictor } from '../src/cache/eviction.ts';
import { storageKey } from '../src/cache/key.ts';
import type { EntryRecord } from '../src/cache/record.ts';
import { CacheStore } from '../src/cache/store.ts';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
    /** Share of the bytes a pass frees: 0.111 is 90 % → 80 %; a small share shows the fixed cost. */
    share: { type: 'string', default: '0.111' },
  },
});
const ENTRIES = Number(values.entries);
const ROUNDS = Number(values.rounds);
const SHARE = Number(values.share);

let clock = 1_000_000;
const now = () => clock;
const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'strata-bench-eviction-'));

function record(url: string, i: number): EntryRecord {
  return {
    kind: 'entry',
    v: 1,
    url,
    status: 200,
    headers: ['content-type', 'text/html', 'cache-control', 'max-age=600'],
    size: 2048,
    bodyId: `bench-${i}-${clock}`,
    chunks: 0,
    chunkSize: 262_144,
    etag: undefined,
    lastModified: undefined,
    contentEncoding: undefined,
    authOk: false,
    tags: [],
    vary: [],
    secondaryKey: '',
    storedAt: clock,
    source: 'max-age',
    lifetime: 600,
    responseTime: clock,
    initialAge: 0,
    swr: 0,
    sie: 0,
    noStale: false,
    noCache: false,
    invalidated: false,
  };
}

const urlOf = (i: number) =>
  `http://shop.example/catalogue/${'autumn-collection-'.repeat(3)}item-${String(i).padStart(7, '0')}.html?ref=bench`;

async function fill(store: CacheStore, indexes: number[]): Promise<void> {
  for (let start = 0; start < indexes.length; start += 2000) {
    await store.write(() => {
      for (const i of indexes.slice(start, start + 2000)) {
        clock++;
        const key = storageKey(urlOf(i));
        store.commitEntryInTxn(key, key, record(urlOf(i), i));
      }
    });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const gc = (globalThis as { gc?: () => void }).gc;
const store = new CacheStore({
  dir,
  maxSize: 64 * 1024 ** 3,
  chunkSize: 256 * 1024,
  memorySize: 0,
  memoryObjectSize: 0,
  log,
  now,
  bodyGraceMs: 0,
});
try {
  const all = Array.from({ length: ENTRIES }, (_, i) => i);
  await fill(store, all);
  const times: number[] = [];
  const heaps: number[] = [];
  const stalls: number[] = [];
  const orders: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Half the entries read again, in random order: the eviction order is not the write order.
    for (let i = 0; i < ENTRIES / 2; i++) {
      clock++;
      store.touch(storageKey(urlOf(Math.floor(Math.random() * ENTRIES))));
    }
    await store.flushAccess();
    const bytes = store.usage().bytes;
    const evictor = new Evictor(store, { maxSize: bytes, log });
    // What a pass reads before its first eviction: the order of one batch (500). A store that
    // keeps no index has to load and sort every access record for it (the argument is ignored).
    gc?.();
    const orderStarted = performance.now();
    const firstBatch = (store.evictionOrder as (range: { limit: number }) => unknown[])({ limit: 500 });
    orders.push(performance.now() - orderStarted);
    if (firstBatch.length === 0) throw new Error('no eviction order');
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const sampler = setInterval(() => {
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    }, 1);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    await evictor.evictTo(bytes * (1 - SHARE));
    const ms = performance.now() - started;
    delay.disable();
    clearInterval(sampler);
    stalls.push(delay.max / 1e6);
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    times.push(ms);
    heaps.push((heapPeak - heapBefore) / 1024 ** 2);
    const missing = all.filter((i) => store.lookup(storageKey(urlOf(i)), {}).kind !== 'found');
    process.stderr.write(
      `round ${round + 1}: evicted ${missing.length} of ${ENTRIES} in ${ms.toFixed(0)} ms, heap +${heaps.at(-1)!.toFixed(1)} MiB, loop blocked up to ${stalls.at(-1)!.toFixed(0)} ms, first batch's order read in ${orders.at(-1)!.toFixed(1)} ms\n`,
    );
    await fill(store, missing);
  }
  process.stdout.write(
    `${JSON.stringify({ entries: ENTRIES, rounds: ROUNDS, share: SHARE, passMs: Math.round(median(times)), heapMiB: Number(median(heaps).toFixed(1)), loopBlockedMs: Math.round(median(stalls)), orderMs: Number(median(orders).toFixed(1)) })}\n`,
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
