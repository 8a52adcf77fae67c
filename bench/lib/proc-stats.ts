/**
 * What a process tree costs, read from /proc: resident memory (VmRSS) and CPU time
 * (utime + stime). A sampler polls the tree while load runs and keeps the peak RSS, total and
 * anonymous (mapped file pages such as an LMDB map count in the total, not in the anonymous part).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports CPU times in clock ticks; 100 per second on every common build. */
const TICKS_PER_SECOND = 100;

interface StatFields {
  state: string;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces; the fields after its closing paren are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3), so field N is fields[N - 3].
  return {
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
  };
}

/** True while the process exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z';
}

/** Every live descendant of a PID (children, grandchildren, ...). */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === null) continue;
    const siblings = children.get(stat.ppid);
    if (siblings === undefined) children.set(stat.ppid, [pid]);
    else siblings.push(pid);
  }
  const found: number[] = [];
  const queue = [root];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    for (const child of children.get(queue[i] ?? -1) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

export interface Rss {
  /** VmRSS: everything resident, mapped file pages (LMDB's map, cache files) included. */
  totalKiB: number;
  /** RssAnon: the process's own memory (heaps, buffers), what must stay bounded. */
  anonKiB: number;
}

/** Resident set size in KiB, zeros when the process is gone. */
export function rss(pid: number): Rss {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { totalKiB: field('VmRSS'), anonKiB: field('RssAnon') };
  } catch {
    return { totalKiB: 0, anonKiB: 0 };
  }
}

/** CPU time (user + system) of a set of processes, in milliseconds. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.cpuTicks ?? 0;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

export interface TreeUsage {
  peakRssKiB: number;
  peakAnonKiB: number;
  cpuMs: number;
}

/**
 * Samples a process tree (the root and its descendants at start) every `intervalMs` until
 * stopped: the peak of the summed RSS, and the CPU time spent between start and stop.
 */
export class TreeSampler {
  readonly #pids: number[];
  readonly #cpuAtStart: number;
  readonly #timer: NodeJS.Timeout;
  #peakRssKiB = 0;
  #peakAnonKiB = 0;

  constructor(root: number, intervalMs = 100) {
    this.#pids = [root, ...descendantsOf(root)];
    this.#cpuAtStart = cpuMs(this.#pids);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    let total = 0;
    let anon = 0;
    for (const pid of this.#pids) {
      const resident = rss(pid);
      total += resident.totalKiB;
      anon += resident.anonKiB;
    }
    this.#peakRssKiB = Math.max(this.#peakRssKiB, total);
    this.#peakAnonKiB = Math.max(this.#peakAnonKiB, anon);
  }

  stop(): TreeUsage {
    clearInterval(this.#timer);
    this.#sample();
    const cpu = cpuMs(this.#pids) - this.#cpuAtStart;
    return { peakRssKiB: this.#peakRssKiB, peakAnonKiB: this.#peakAnonKiB, cpuMs: cpu };
  }
}

export interface MachineTimes {
  /** CPU time spent running anything, summed over cores (user, nice, system, irq). */
  busyMs: number;
  /** Time the hypervisor gave this machine's cores to someone else. */
  stealMs: number;
}

/** The machine-wide counters of /proc/stat's first line. */
export function machineTimes(): MachineTimes {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [user, nice, system, , , irq, , steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0);
    return { busyMs: (busy * 1000) / TICKS_PER_SECOND, stealMs: ((steal ?? 0) * 1000) / TICKS_PER_SECOND };
  } catch {
    return { busyMs: 0, stealMs: 0 };
  }
}

/** Follows one process's CPU time while it runs (the last reading survives its exit). */
export class CpuFollower {
  #pid = 0;
  #start = 0;
  #last = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 100) {
    this.#timer = setInterval(() => this.#read(), intervalMs);
  }

  follow(pid: number): void {
    this.#pid = pid;
    this.#start = cpuMs([pid]);
    this.#last = this.#start;
  }

  #read(): void {
    if (this.#pid === 0) return;
    const now = cpuMs([this.#pid]);
    if (now >= this.#last) this.#last = now;
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.#last - this.#start;
  }
}

export interface MemoryRollup {
  /** Resident memory of the processes: everything, mapped files included. */
  rssKiB: number;
  /** Anonymous memory (heaps, buffers, stacks): what the process itself allocated. */
  anonKiB: number;
  /** Resident file-backed pages (the binary, shared libraries, an LMDB map): rss − anon. */
  fileKiB: number;
}

/** Memory of a process tree from /proc/PID/smaps_rollup, summed; zeros for a process gone. */
export function memoryRollup(root: number): MemoryRollup {
  const total: MemoryRollup = { rssKiB: 0, anonKiB: 0, fileKiB: 0 };
  for (const pid of [root, ...descendantsOf(root)]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    total.rssKiB += field('Rss');
    total.anonKiB += field('Anonymous');
  }
  total.fileKiB = total.rssKiB - total.anonKiB;
  return total;
}
