/**
 * Rate limits node-wide with `--workers N`. Each worker enforces the limit locally (its share
 * of the burst, no IPC on the request path) and reports what it admitted per key every
 * interval; the primary feeds those counts into node-wide buckets (full rate and burst) and
 * broadcasts the keys over them with the time they may send again. Every admitted request
 * is counted node-wide, so an overshoot within one interval is paid back by a longer refusal:
 * a client is held to the node-wide rate within about one interval.
 */
import type { SiteConfig } from '../config/schema.ts';
import { Gcra } from './gcra.ts';
import type { RateLimiter, SiteGuard } from './site-guard.ts';

/** How often workers report counts and the primary names the keys over the limit. */
export const RATE_SYNC_MS = 100;

type BucketName = 'requests' | 'origin';

export interface RateCounts {
  site: string;
  bucket: BucketName;
  /** [key, requests admitted since the last report]. */
  counts: [string, number][];
}

export interface RateOver {
  site: string;
  bucket: BucketName;
  /** [key, refused until (ms since the epoch)]. */
  keys: [string, number][];
}

/** Worker side: the sites' limiters, their counts drained for the primary, its verdicts applied. */
export class RateShare {
  readonly #guards = new Map<string, SiteGuard>();

  /** The guard of a site (called again with the new one when the configuration is reloaded). */
  register(site: string, guard: SiteGuard): void {
    this.#guards.set(site, guard);
  }

  /** What was admitted since the last call, per site and bucket (empty when nothing was). */
  drain(): RateCounts[] {
    const out: RateCounts[] = [];
    for (const [site, guard] of this.#guards) {
      for (const limiter of [guard.requests, guard.origin]) {
        if (limiter?.counts === undefined || limiter.counts.size === 0) continue;
        out.push({ site, bucket: limiter.name, counts: [...limiter.counts] });
        limiter.counts.clear();
      }
    }
    return out;
  }

  /** The primary's list of keys over the node-wide limits. */
  apply(over: readonly RateOver[]): void {
    for (const entry of over) {
      const guard = this.#guards.get(entry.site);
      const limiter: RateLimiter | undefined = entry.bucket === 'origin' ? guard?.origin : guard?.requests;
      if (limiter === undefined) continue;
      for (const [key, until] of entry.keys) limiter.block(key, until);
    }
  }
}

/** Primary side: node-wide buckets fed by the workers' counts. */
export class RateAggregator {
  readonly #buckets = new Map<string, Gcra>();
  #over = new Map<string, RateOver>();

  constructor(sites: readonly SiteConfig[]) {
    for (const site of sites) {
      for (const bucket of ['requests', 'origin'] as const) {
        const limit = bucket === 'requests' ? site.security.rateLimit : site.security.originLimit;
        if (limit === undefined) continue;
        const burst = limit.burst ?? Math.max(1, Math.ceil(limit.requestsPerSecond));
        this.#buckets.set(`${site.name}\n${bucket}`, new Gcra(limit.requestsPerSecond, burst));
      }
    }
  }

  get active(): boolean {
    return this.#buckets.size > 0;
  }

  /** One worker's report. */
  add(reports: readonly RateCounts[], now: number): void {
    for (const report of reports) {
      const name = `${report.site}\n${report.bucket}`;
      const gcra = this.#buckets.get(name);
      if (gcra === undefined) continue;
      for (const [key, count] of report.counts) {
        gcra.add(key, count, now);
        const wait = gcra.waitFor(key, now);
        if (wait <= 0) continue;
        let over = this.#over.get(name);
        if (over === undefined) {
          over = { site: report.site, bucket: report.bucket, keys: [] };
          this.#over.set(name, over);
        }
        over.keys.push([key, now + wait]);
      }
    }
  }

  /** The keys found over their limit since the last call (to broadcast to every worker). */
  takeOver(): RateOver[] {
    if (this.#over.size === 0) return [];
    const over = [...this.#over.values()];
    this.#over = new Map();
    return over;
  }
}
