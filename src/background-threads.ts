/**
 * V8's background threads (`node.backgroundNice`, off by default). A serving process may run
 * V8's worker threads (optimizing compiles, concurrent marking and sweeping, the helpers of
 * parallel collections) that many nice levels below the thread that answers requests. On an idle
 * core nothing changes; on a busy one the requests come first and the background work takes the
 * core's spare time. A node pinned to one core met its second herd while V8 compiled what the
 * first had made hot: the compiles took more than half the core while 500 followers were being
 * answered, and at 10 levels the herd's median answer came about 50 ms sooner. The collector's
 * background work waits as well: under a steady load of stored misses the heap grows further
 * between collections, about 60 MiB more anonymous memory at 10 levels, so it is not the default
 * (docs/performance.md, "V8's background threads below the requests").
 *
 * Linux only (threads are found by name in /proc/self/task; elsewhere this does nothing). Raising
 * a thread's nice value needs no privilege; nothing here lowers one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The name Node gives the threads of V8's platform (its pool of `--v8-pool-size` threads). */
const V8_WORKER = 'V8Worker';
/** The lowest priority Linux has (nice 19). */
const NICE_MAX = 19;

export interface ThreadAccess {
  /** Thread ids of this process. */
  threads(): string[];
  /** A thread's name (`comm`), or undefined when it is gone. */
  name(tid: string): string | undefined;
  /** The nice value of the process (of its main thread). */
  processNice(): number;
  setNice(tid: string, nice: number): void;
}

const procThreads: ThreadAccess = {
  threads: () => readdirSync('/proc/self/task'),
  name: (tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  processNice: () => getPriority(0),
  setNice: (tid, nice) => setPriority(Number(tid), nice),
};

/**
 * Sets V8's worker threads `levels` nice levels below the process (at most 19). Idempotent: a
 * second call with the same levels changes nothing; 0 leaves the threads as they are. Returns how
 * many threads were set.
 */
export function lowerBackgroundThreads(
  levels: number,
  access: ThreadAccess | undefined = process.platform === 'linux' ? procThreads : undefined,
): number {
  if (levels <= 0 || access === undefined) return 0;
  let tids: string[];
  try {
    tids = access.threads();
  } catch {
    return 0; // no /proc: nothing to set
  }
  const nice = Math.min(NICE_MAX, access.processNice() + levels);
  let set = 0;
  for (const tid of tids) {
    if (access.name(tid) !== V8_WORKER) continue;
    try {
      access.setNice(tid, nice);
      set++;
    } catch {
      // a thread that ended between the listing and here
    }
  }
  return set;
}
