/**
 * A rate limiter per key by the generic cell rate algorithm (GCRA): each key keeps one number,
 * its theoretical arrival time (TAT). A request at `now` is admitted when the TAT it would push
 * forward stays within `burst` emission intervals of now. Synchronous, one Map read and write
 * per check, no allocation for a known key; memory is bounded by `maxKeys` (a key whose TAT is
 * past holds no state worth keeping and is dropped first, then the oldest inserted).
 */

export interface RateVerdict {
  /** 0: admitted; otherwise milliseconds until one more request would be admitted. */
  retryAfterMs: number;
  /** Requests the key may still send at once. */
  remaining: number;
}

export class Gcra {
  /** Milliseconds between two requests at the sustained rate. */
  readonly interval: number;
  /** How far ahead of now the TAT may run: burst intervals. */
  readonly tolerance: number;
  readonly burst: number;
  readonly rate: number;
  readonly maxKeys: number;
  readonly #tat = new Map<string, number>();

  constructor(rate: number, burst: number, maxKeys = 100_000) {
    this.rate = rate;
    this.burst = burst;
    this.interval = 1000 / rate;
    this.tolerance = this.interval * burst;
    this.maxKeys = maxKeys;
  }

  get size(): number {
    return this.#tat.size;
  }

  /** Admits (and counts) one request of `key` at `now` (ms), or says how long to wait. 0: admitted. */
  take(key: string, now: number): number {
    const stored = this.#tat.get(key);
    const tat = stored === undefined || stored < now ? now : stored;
    const next = tat + this.interval;
    if (next - now > this.tolerance) return next - this.tolerance - now;
    if (stored === undefined && this.#tat.size >= this.maxKeys) this.#makeRoom(now);
    this.#tat.set(key, next);
    return 0;
  }

  /** Counts `count` requests of `key` admitted elsewhere (another worker), without refusing any. */
  add(key: string, count: number, now: number): void {
    const stored = this.#tat.get(key);
    const tat = stored === undefined || stored < now ? now : stored;
    if (stored === undefined && this.#tat.size >= this.maxKeys) this.#makeRoom(now);
    this.#tat.set(key, tat + this.interval * count);
  }

  /**
   * Holds `key` until `until` (ms): refused before, and then with no burst left — one request
   * at `until`, then one per interval (what the node-wide bucket allows after a refusal).
   */
  hold(key: string, until: number): void {
    const tat = until + this.tolerance - this.interval;
    const stored = this.#tat.get(key);
    if (stored !== undefined && stored >= tat) return;
    if (stored === undefined && this.#tat.size >= this.maxKeys) this.#makeRoom(until);
    this.#tat.set(key, tat);
  }

  /** Requests `key` may still send at once at `now`. */
  remaining(key: string, now: number): number {
    const stored = this.#tat.get(key);
    const ahead = stored === undefined || stored < now ? 0 : stored - now;
    return Math.max(0, Math.floor((this.tolerance - ahead) / this.interval));
  }

  /** Milliseconds until `key` may send again (0: now). */
  waitFor(key: string, now: number): number {
    const stored = this.#tat.get(key);
    if (stored === undefined) return 0;
    return Math.max(0, stored + this.interval - this.tolerance - now);
  }

  #makeRoom(now: number): void {
    // Keys whose TAT is past are at full burst: forgetting them changes nothing.
    let swept = 0;
    for (const [key, tat] of this.#tat) {
      if (tat <= now) this.#tat.delete(key);
      if (++swept >= 1024) break;
    }
    if (this.#tat.size < this.maxKeys) return;
    const oldest = this.#tat.keys().next();
    if (!oldest.done) this.#tat.delete(oldest.value);
  }
}

/**
 * The key of a client address: IPv4 as it is (IPv4-mapped IPv6 unwrapped), IPv6 by its /64
 * (one subscriber's allocation), so rotating through a prefix buys no fresh buckets.
 */
export function clientKey(address: string): string {
  if (address.indexOf(':') === -1) return address;
  if (address.startsWith('::ffff:') && address.indexOf('.') !== -1) return address.slice(7);
  return ipv6Prefix64(address);
}

function ipv6Prefix64(address: string): string {
  const zone = address.indexOf('%');
  const plain = (zone === -1 ? address : address.slice(0, zone)).toLowerCase();
  const double = plain.indexOf('::');
  let groups: string[];
  if (double === -1) groups = plain.split(':');
  else {
    const head = double === 0 ? [] : plain.slice(0, double).split(':');
    const tail = double + 2 >= plain.length ? [] : plain.slice(double + 2).split(':');
    groups = [...head, ...new Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group || '0', 16).toString(16))
    .join(':')}::/64`;
}
