/**
 * A young-generation collection (scavenge) every `SCAVENGE_BYTES` of origin body read. Node
 * reads a socket into a new 64 KiB buffer each time; a large body's buffers die young, but the
 * miss and pass paths allocate too few JavaScript objects to fill the young generation, so no
 * scavenge came to free them: V8 counted them against its heap limit instead and marked the
 * whole heap (a full mark-compact, on the core that serves) every few tens of MiB. Measured on a
 * 1 GiB miss: 73 full collections without, 1 with, and 7.0 → 3.9 s of server CPU. A scavenge
 * costs about what the young objects alive cost (little here): a few per second at most, only
 * while large bodies flow. And a herd's collection while its origin answer is awaited
 * (HerdCollector, below).
 *
 * The collector is reached the documented way for a process started without `--expose-gc`:
 * the flag is set, and `gc` taken from a new context (the main context never gets it). If that
 * is not available, nothing happens.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { heapSpace } from '../heap.ts';

const SCAVENGE_BYTES = 8 * 1024 * 1024;

export type Collect = (options: { type: 'minor' | 'major'; flavor?: 'regular' | 'last-resort' }) => void;

let collect: Collect | null | undefined;
let read = 0;

function collector(): Collect | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    collect = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Notes `bytes` of origin body read; past SCAVENGE_BYTES since the last, scavenges. */
export function originBytesRead(bytes: number): void {
  read += bytes;
  if (read < SCAVENGE_BYTES) return;
  read = 0;
  collector()?.({ type: 'minor' });
}

/**
 * Once, when a node has started: a full collection that compacts and gives back what loading
 * the modules and opening the store left behind (a few MiB of a node's resident memory before
 * its first request; docs/performance.md, "Memory at start"). Nothing when unavailable.
 */
export function collectAfterStart(): void {
  collector()?.({ type: 'major', flavor: 'last-resort' });
}

/** How long a herd's followers (collapse.ts, HERD_FOLLOWERS) wait before their collection. */
export const HERD_WAIT_MS = 20;
/**
 * Herd collections take at most this share of the time: after one that took d ms, the next
 * waits (1 / share - 1) * d ms (9 * d: a 30 ms collection, 270 ms).
 */
export const HERD_SHARE = 0.1;
/** Old generation grown to this many times its size after the last full herd collection: full again. */
export const HERD_FULL_GROWTH = 1.5;
/**
 * Above this much old generation a herd gets young collections only: a forced full collection
 * is not incremental, and its pause (about 1 ms per MiB here) stalls every other request too.
 */
export const HERD_FULL_MAX_BYTES = 64 * 1024 * 1024;

export interface HerdCollectorOptions {
  /** Milliseconds on a monotonic clock (performance.now in a node). */
  now: () => number;
  /** The collector (default: the runtime's, null when unavailable). */
  collect?: Collect | null;
  /** Runs `run` after `ms` (default: an unreferenced timer). */
  schedule?: (run: () => void, ms: number) => void;
  /** Bytes used in the old generation (default: V8's old space). */
  oldBytes?: () => number;
}

/**
 * The collections of a herd: hundreds of requests for one cold key that wait together for one
 * origin answer. Their connections, requests and responses are all young objects, and a young
 * collection that came while they were answered (V8 starts one as the young generation fills)
 * copied every one of them: 12-25 ms in the middle of the answers, and sometimes a full
 * collection after it. Once HERD_FOLLOWERS followers have waited HERD_WAIT_MS and the origin
 * still has not answered, the node collects while it waits: two young collections (what is
 * alive is then old, and the answers' own collections find little to copy), or a full one when
 * none was made for a herd yet or the old generation grew HERD_FULL_GROWTH times since (it also
 * moves the young objects, and keeps V8's own full collection out of the answers), unless the old
 * generation is past HERD_FULL_MAX_BYTES. They take at most HERD_SHARE of the process's time, so
 * many herds at once cost little (docs/performance.md); one collector per process (herdCollector).
 */
export class HerdCollector {
  readonly #now: () => number;
  readonly #collect: Collect | null;
  readonly #schedule: (run: () => void, ms: number) => void;
  readonly #oldBytes: () => number;
  /** When the next herd collection may be made. */
  #next = Number.NEGATIVE_INFINITY;
  /** Old generation bytes after the last full herd collection (undefined before the first). */
  #oldAfterFull: number | undefined;
  #young = 0;
  #full = 0;

  constructor(options: HerdCollectorOptions) {
    this.#now = options.now;
    this.#collect = options.collect === undefined ? collector() : options.collect;
    this.#schedule = options.schedule ?? laterUnref;
    this.#oldBytes = options.oldBytes ?? oldSpaceUsed;
  }

  /** A herd formed; `stillWaiting`: whether its origin answer is still awaited. */
  readonly herd = (stillWaiting: () => boolean): void => {
    if (this.#collect === null) return;
    this.#schedule(() => this.#collectFor(stillWaiting), HERD_WAIT_MS);
  };

  #collectFor(stillWaiting: () => boolean): void {
    const collect = this.#collect;
    const start = this.#now();
    if (collect === null || !stillWaiting() || start < this.#next) return;
    const old = this.#oldBytes();
    const grown = this.#oldAfterFull === undefined || old >= this.#oldAfterFull * HERD_FULL_GROWTH;
    if (grown && old <= HERD_FULL_MAX_BYTES) {
      collect({ type: 'major' });
      this.#oldAfterFull = this.#oldBytes();
      this.#full++;
    } else {
      collect({ type: 'minor' });
      collect({ type: 'minor' });
      this.#young++;
    }
    const end = this.#now();
    this.#next = end + (end - start) * (1 / HERD_SHARE - 1);
  }

  /** Herd collections made: pairs of young collections, and full ones. */
  get made(): { young: number; full: number } {
    return { young: this.#young, full: this.#full };
  }
}

function laterUnref(run: () => void, ms: number): void {
  setTimeout(run, ms).unref();
}

function oldSpaceUsed(): number {
  return heapSpace('old_space')?.space_used_size ?? 0;
}

let shared: HerdCollector | undefined;

/** The process's herd collector (its time share is the process's), on the monotonic clock. */
export function herdCollector(): HerdCollector {
  shared ??= new HerdCollector({ now: () => performance.now() });
  return shared;
}
