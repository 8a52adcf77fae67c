/**
 * Origin selection for one request (Pingora's BackendSelection / BackendIter): a selector
 * per site hands out an iterator that yields each origin at most once, best first; the
 * caller (the attempt loop) decides whether a failure earns another `next()`.
 *
 * Preference tiers, not "power of two choices": a CDN site has 2–6 origins, and P2C can
 * send at most 2/N of the traffic to the best one. Usable origins are ordered by region
 * (the preferred region first), then by cost within the tier; the selector stays on the
 * first fit origin and spills to the next only on saturation (requests in flight reach
 * maxConnections), degradation (the tier's best origin answers 3× and 50 ms slower than its own
 * baseline, and another tier is cheaper) or ejection.
 *
 *   latency cost = latency × (1 + pending / maxConnections) ÷ (weight × slow start)
 *
 * where latency is the EWMA of time to headers (decaying while the origin gets no traffic, see
 * latency.ts), or the wait of the oldest request still in flight if that is longer (a
 * black-holed origin answers nothing, so has no new samples).
 */
import type { OriginState } from './state.ts';

export type SelectionMode = 'latency' | 'round-robin' | 'least-request' | 'hash';

export interface SelectionPolicy {
  selection: SelectionMode;
  /** ms over which a recovered origin's share ramps up. */
  slowStart: number;
}

export interface SelectionRequest {
  /** The region whose origins come first (node's or client's), if any. */
  region?: string | undefined;
  /** What `hash` selection hashes: the cache key. */
  key?: string | undefined;
}

/** A preferred tier whose best origin answers this many times its own baseline is skipped... */
export const DEGRADED_FACTOR = 3;
/** ...if also slower than its baseline by at least this much (ms): 3 ms against 1 ms is noise. */
export const DEGRADED_MARGIN_MS = 50;
/** Latency assumed for an origin not yet measured, when no origin is (ms). */
const UNMEASURED_MS = 1;
/**
 * An origin not yet measured is assumed a little faster than the fastest known one, so that
 * it is tried once (and measured); slow start keeps a recovered origin from taking everything.
 */
const UNMEASURED_FACTOR = 0.99;

/** Why an origin was chosen, for logs and /stats. */
export type ChoiceReason = 'preferred' | 'spill' | 'backup' | 'panic';

export class OriginSelector {
  readonly members: readonly OriginState[];
  readonly backups: readonly OriginState[];
  readonly policy: SelectionPolicy;
  readonly now: () => number;
  readonly random: () => number;
  /** Round-robin state, shared by the requests of the site. */
  readonly rotation = new Rotation();

  constructor(
    members: readonly OriginState[],
    backups: readonly OriginState[],
    policy: SelectionPolicy,
    now: () => number,
    random: () => number = Math.random,
  ) {
    this.members = members;
    this.backups = backups;
    this.policy = policy;
    this.now = now;
    this.random = random;
  }

  /** The origins for one request, best first, each at most once. */
  iter(request: SelectionRequest = {}): OriginIter {
    return new OriginIter(this, request);
  }
}

/**
 * Smooth weighted round robin (as nginx's upstream does it): each pick adds every candidate's
 * weight to its credit, takes the candidate with the most credit, and takes the candidates'
 * total weight from it. Weights 1 and 3 give `b a b b` over and over (one in four, spread out);
 * equal weights take each in turn. A weight given by `weightOf` (the origin's weight times its
 * slow-start factor, as nginx's `slow_start` scales it) may be fractional.
 */
export class Rotation {
  #credit = new Map<OriginState, number>();

  pick(
    tier: readonly OriginState[],
    weightOf: (origin: OriginState) => number = (origin) => origin.traits.weight,
  ): OriginState {
    let total = 0;
    let best = tier[0]!;
    let bestCredit = Number.NEGATIVE_INFINITY;
    for (const origin of tier) {
      const weight = weightOf(origin);
      total += weight;
      const credit = (this.#credit.get(origin) ?? 0) + weight;
      this.#credit.set(origin, credit);
      if (credit > bestCredit) {
        best = origin;
        bestCredit = credit;
      }
    }
    this.#credit.set(best, bestCredit - total);
    return best;
  }

  /** The state, to put back after a look that must not move the rotation on (/stats). */
  save(): Map<OriginState, number> {
    return new Map(this.#credit);
  }

  restore(saved: Map<OriginState, number>): void {
    this.#credit = saved;
  }
}

export class OriginIter {
  readonly #selector: OriginSelector;
  readonly #request: SelectionRequest;
  readonly #tried = new Set<OriginState>();
  /** Why the last origin returned by next() was chosen. */
  reason: ChoiceReason = 'preferred';

  constructor(selector: OriginSelector, request: SelectionRequest) {
    this.#selector = selector;
    this.#request = request;
  }

  get attempts(): number {
    return this.#tried.size;
  }

  /** Whether next() would return an origin (one of the site's or its backups' not tried yet). */
  hasAnother(): boolean {
    const selector = this.#selector;
    return (
      selector.members.some((origin) => !this.#tried.has(origin)) ||
      selector.backups.some((origin) => !this.#tried.has(origin) && !origin.draining)
    );
  }

  /** The next origin to try, or undefined when every one was tried. */
  next(): OriginState | undefined {
    const selector = this.#selector;
    const now = selector.now();
    const members = selector.members;
    // A site of one usable origin (the common case): every mode chooses it, as preferred and
    // never spilled, so the tiers and costs below are not built for each request.
    if (this.#tried.size === 0 && members.length === 1 && members[0]!.usable(now)) {
      const only = members[0]!;
      this.reason = 'preferred';
      this.#tried.add(only);
      return only;
    }
    const untried = (list: readonly OriginState[]) => list.filter((origin) => !this.#tried.has(origin));
    let reason: ChoiceReason = 'preferred';
    let candidates = untried(members).filter((origin) => origin.usable(now));
    if (candidates.length === 0) {
      reason = 'backup';
      candidates = untried(selector.backups).filter((origin) => origin.usable(now));
    }
    if (candidates.length === 0) {
      // Nothing usable: try the ejected and unhealthy too rather than fail without trying.
      reason = 'panic';
      candidates = untried(members).filter((origin) => !origin.draining);
      if (candidates.length === 0)
        candidates = untried(selector.backups).filter((origin) => !origin.draining);
      // A request that resolved its site just before a reload removed every origin: still try them.
      if (candidates.length === 0) candidates = untried(members);
    }
    if (candidates.length === 0) return undefined;
    const chosen = this.#choose(candidates, now);
    if (reason === 'preferred' && chosen.spilled) reason = 'spill';
    this.reason = reason;
    this.#tried.add(chosen.origin);
    return chosen.origin;
  }

  #choose(candidates: OriginState[], now: number): { origin: OriginState; spilled: boolean } {
    const selector = this.#selector;
    const { region } = this.#request;
    const preferred =
      region === undefined ? candidates : candidates.filter((o) => o.traits.region === region);
    const rest = region === undefined ? [] : candidates.filter((o) => o.traits.region !== region);
    // Latency selection measures as it goes (one request at a time to a stale estimate); the
    // other modes do not read latency, and hash must keep a key on its origin.
    const measuring = selector.policy.selection === 'latency';
    const fit = (list: OriginState[]) =>
      list.filter((o) => o.pending < o.traits.maxConnections && !(measuring && probing(o, now)));
    const fitPreferred = fit(preferred);
    const fitRest = fit(rest);
    const costs = latencyCosts(candidates, now, selector.policy.slowStart);
    let tier: OriginState[];
    let spilled = false;
    if (fitPreferred.length > 0 && !degraded(fitPreferred, fitRest, costs, now)) tier = fitPreferred;
    else if (fitRest.length > 0) {
      tier = fitRest;
      spilled = preferred.length > 0;
    } else tier = candidates; // everything saturated: the cheapest still wins
    return { origin: this.#pick(tier, costs, now), spilled };
  }

  #pick(tier: OriginState[], costs: Map<OriginState, number>, now: number): OriginState {
    const selector = this.#selector;
    switch (selector.policy.selection) {
      case 'round-robin':
        // A recovered origin wins its turns back over slow start, as it wins traffic back by cost.
        return selector.rotation.pick(
          tier,
          (o) => o.traits.weight * o.slowStartFactor(now, selector.policy.slowStart),
        );
      case 'least-request': {
        const load = (o: OriginState) =>
          (o.pending + 1) / (o.traits.weight * o.slowStartFactor(now, selector.policy.slowStart));
        return lowest(tier, load, selector.random);
      }
      case 'hash': {
        const key = this.#request.key ?? '';
        return lowest(tier, (o) => -rendezvousScore(key, o.name, o.traits.weight));
      }
      default:
        return lowest(tier, (o) => costs.get(o)!);
    }
  }
}

/**
 * An origin whose estimate is older than this (no answer measured for that long: it was
 * idle, skipped as slow, or is being measured for the first time) gets one request at a time
 * until an answer measures it again.
 */
export const PROBE_AFTER_MS = 1000;

/**
 * Whether an origin is being re-measured: its estimate is stale and a request is already on its
 * way there. Without this, an origin whose decayed estimate reads low would take every request
 * of the next round trip (at 1,000 req/s, dozens sent to a 300 ms origin before one answer
 * showed it is still slow); with it, one request measures it and the rest go where the
 * estimate is fresh. Not fit, like a saturated origin: when nothing else is fit, the cheapest
 * still wins.
 */
function probing(origin: OriginState, now: number): boolean {
  if (origin.pending === 0) return false;
  const at = origin.latency.sampledAt;
  return at === undefined || now - at > PROBE_AFTER_MS;
}

/** Each candidate's latency cost (see the module comment). */
export function latencyCosts(
  candidates: readonly OriginState[],
  now: number,
  slowStart: number,
): Map<OriginState, number> {
  let known = Number.POSITIVE_INFINITY;
  const latencies = candidates.map((origin) => origin.latency.at(now));
  for (const value of latencies) if (value !== undefined && value < known) known = value;
  const assumed = Number.isFinite(known) ? known * UNMEASURED_FACTOR : UNMEASURED_MS;
  const costs = new Map<OriginState, number>();
  candidates.forEach((origin, index) => {
    const latency = Math.max(latencies[index] ?? assumed, origin.oldestWait(now), UNMEASURED_MS / 1000);
    const load = 1 + origin.pending / origin.traits.maxConnections;
    costs.set(origin, (latency * load) / (origin.traits.weight * origin.slowStartFactor(now, slowStart)));
  });
  return costs;
}

/**
 * A preferred tier is degraded when its cheapest origin answers DEGRADED_FACTOR times its own
 * baseline and DEGRADED_MARGIN_MS more (it slowed down), and another tier is cheaper. An origin
 * that is simply farther than another is not degraded: region preference is a policy.
 */
function degraded(
  preferred: OriginState[],
  rest: OriginState[],
  costs: Map<OriginState, number>,
  now: number,
): boolean {
  if (rest.length === 0) return false;
  let best = preferred[0]!;
  for (const origin of preferred) if (costs.get(origin)! < costs.get(best)!) best = origin;
  const latency = best.latency.at(now);
  const baseline = best.latency.baseline;
  if (latency === undefined || baseline === undefined) return false;
  const slowed = latency > DEGRADED_FACTOR * baseline && latency - baseline > DEGRADED_MARGIN_MS;
  return slowed && Math.min(...rest.map((o) => costs.get(o)!)) < costs.get(best)!;
}

/**
 * The candidate with the lowest score (a full scan: a site has a handful of origins). Ties go
 * to the first in list order, or, given `random`, to one of the tied chosen uniformly.
 */
function lowest(
  list: OriginState[],
  score: (origin: OriginState) => number,
  random?: () => number,
): OriginState {
  let best = list[0]!;
  let bestScore = score(best);
  let ties = 1;
  for (let i = 1; i < list.length; i++) {
    const candidate = list[i]!;
    const value = score(candidate);
    if (value < bestScore) {
      best = candidate;
      bestScore = value;
      ties = 1;
    } else if (value === bestScore && random !== undefined && random() * ++ties < 1) {
      best = candidate;
    }
  }
  return best;
}

/**
 * Rendezvous (highest random weight) hashing: every origin scores the key; the highest
 * wins, and removing an origin moves only the keys it held. Weighted as -w / ln(u)
 * (Schindelhauer & Schomaker), u the hash mapped into (0, 1).
 */
export function rendezvousScore(key: string, origin: string, weight = 1): number {
  const u = (fnv1a(`${origin}\u0000${key}`) + 0.5) / 4294967296;
  return -weight / Math.log(u);
}

/** FNV-1a, 32 bits, then a murmur3 finalizer so close keys spread. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
