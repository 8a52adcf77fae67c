/**
 * A site's security rules, built once per site from its `security` config: what the guard
 * phase asks on every request (address rules, filters, limits, the request rate) and what
 * the pipeline asks before a request leaves for the origin (the origin-bound rate). No I/O,
 * no await; an address's rule verdict is remembered (bounded) so a hit pays one Map read.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { SecurityConfig } from '../config/security-schema.ts';
import { clientKey, Gcra } from './gcra.ts';
import { addressList, countryRule, type GeoLookup } from './ip-rules.ts';

/** What an address is to a site: 0 ordinary, 1 exempt from limits, 2 refused. */
type Standing = 0 | 1 | 2;

/** Why a request is refused (the guard phase turns it into an answer). */
export type Refusal =
  | { kind: 'forbidden'; rule: 'deny' | 'country' | 'block' }
  | { kind: 'limit'; rule: 'url-length' | 'header-count' | 'header-bytes' | 'body-size' }
  | { kind: 'ambiguous'; rule: 'ambiguous-path' }
  | { kind: 'rate'; bucket: 'requests' | 'origin'; retryAfterMs: number; limiter: RateLimiter };

/**
 * What a cache and an origin may read differently in a path as the client spelled it (before
 * the query): a `;` delimiter (Spring, Tomcat), encoded slash, backslash, dot or NUL, a raw
 * backslash, `//`, a `.` or `..` segment. (The node forwards dot segments resolved and
 * unreserved escapes decoded, request-target.ts; strict sites refuse such spellings anyway.)
 */
const AMBIGUOUS_PATH = /;|%2f|%5c|%2e|%00|\\|\/\/|\/\.\.?(?:\/|$)/i;

/** Remembered address verdicts per site before the memo starts over. */
const MEMO_SIZE = 65_536;

/** Longest header value kept as a bucket key as it is (`by: header:NAME`); longer: its digest. */
const MAX_KEY_VALUE = 64;

/** One bucket of a site: a GCRA limiter and how its keys are taken from a request. */
export class RateLimiter {
  readonly gcra: Gcra;
  /** Workers > 1: requests admitted per key since the last report to the primary. */
  readonly counts: Map<string, number> | undefined;
  readonly by: string;
  readonly #header: string | undefined;
  /** The `RateLimit-Policy` item: quota (burst) per window (seconds to refill it). */
  readonly policy: string;
  readonly name: 'requests' | 'origin';

  /**
   * With `workers` > 1 this worker's bucket holds its share of the burst (the node-wide rate
   * still applies to a client whose connection stays on one worker); what it admits is
   * counted for the primary, which holds the node-wide bucket and names the keys over it.
   */
  constructor(name: 'requests' | 'origin', rate: number, burst: number | undefined, by: string, workers = 1) {
    this.name = name;
    const size = burst ?? Math.max(1, Math.ceil(rate));
    this.gcra = new Gcra(rate, workers > 1 ? Math.max(1, Math.ceil(size / workers)) : size);
    this.counts = workers > 1 ? new Map() : undefined;
    this.by = by;
    this.#header = by.startsWith('header:') ? by.slice(7).toLowerCase() : undefined;
    this.policy = `"${name}";q=${size};w=${Math.max(1, Math.ceil(size / rate))}`;
  }

  /** Admits (and counts) one request of `key`, or says how many ms to wait (0: admitted). */
  take(key: string, now: number): number {
    const wait = this.gcra.take(key, now);
    if (wait === 0 && this.counts !== undefined) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return wait;
  }

  /**
   * The primary found `key` over the node-wide limit: refused here until `until` (ms), with no
   * local burst left after it (the node-wide bucket has none either).
   */
  block(key: string, until: number): void {
    this.gcra.hold(key, until);
  }

  /**
   * The bucket key of a request. A header value longer than an API key is kept as its digest:
   * a client sending a fresh 16 KiB value per request would otherwise hold 100,000 of them.
   */
  key(address: string, headers: IncomingHttpHeaders): string {
    if (this.by === 'client') return clientKey(address);
    if (this.by === 'site') return '';
    const value = this.#header === undefined ? undefined : headers[this.#header];
    if (typeof value !== 'string') return clientKey(address);
    return value.length <= MAX_KEY_VALUE
      ? `h:${value}`
      : `h#${createHash('sha256').update(value).digest('base64url')}`;
  }

  /** IETF RateLimit-Policy / RateLimit fields and Retry-After of a refusal. */
  fields(key: string, now: number, retryAfterMs: number): Record<string, string> {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    return {
      'retry-after': String(seconds),
      'ratelimit-policy': this.policy,
      ratelimit: `"${this.name}";r=${this.gcra.remaining(key, now)};t=${seconds}`,
    };
  }
}

export class SiteGuard {
  readonly requests: RateLimiter | undefined;
  readonly origin: RateLimiter | undefined;
  readonly #allow: ((address: string) => boolean) | undefined;
  readonly #deny: ((address: string) => boolean) | undefined;
  readonly #country: ((address: string) => boolean) | undefined;
  readonly #trusted: ((address: string) => boolean) | undefined;
  readonly #memo = new Map<string, Standing>();
  /** No address rule and no trusted proxy: every address is ordinary, nothing to look up. */
  readonly #noAddressRules: boolean;
  readonly #block: SecurityConfig['block'];
  readonly #blockPatterns: (RegExp | undefined)[];
  readonly #limits: SecurityConfig['limits'];
  /**
   * Header bytes are counted only when the site's bound is below the listener's (HTTP/1.1:
   * proxy.maxHeaderSize), or on HTTP/2, whose own bound (http2.maxHeaderListSize) is set apart
   * from it and holds only once the client has acknowledged the server's SETTINGS.
   */
  readonly #countHeaderBytes: boolean;
  readonly poisonCheck: boolean;
  /** Request fields the poisoning check leaves out. */
  readonly poisonIgnore: ReadonlySet<string>;
  readonly deceptionCheck: boolean;
  readonly #refuseAmbiguous: boolean;
  /** Largest request body (a chunked one is cut past it as it streams). */
  readonly maxBodySize: number;
  /** Times each rule acted on this site (in this process), for /stats. */
  readonly actions = new Map<string, number>();

  constructor(
    config: SecurityConfig,
    options: {
      /** Whether an address is a trusted proxy; undefined when none is configured. */
      trusted: ((address: string) => boolean) | undefined;
      geo?: GeoLookup | undefined;
      maxHeaderSize: number;
      workers?: number;
    },
  ) {
    const rate = config.rateLimit;
    const workers = options.workers ?? 1;
    this.requests = rate
      ? new RateLimiter('requests', rate.requestsPerSecond, rate.burst, rate.by, workers)
      : undefined;
    const origin = config.originLimit;
    this.origin = origin
      ? new RateLimiter('origin', origin.requestsPerSecond, origin.burst, origin.by, workers)
      : undefined;
    this.#allow = addressList(config.allow);
    this.#deny = addressList(config.deny);
    this.#country = config.countries ? countryRule(config.countries, options.geo) : undefined;
    this.#trusted = options.trusted;
    this.#noAddressRules =
      this.#allow === undefined &&
      this.#deny === undefined &&
      this.#country === undefined &&
      options.trusted === undefined;
    this.#block = config.block.map(withHead);
    this.#blockPatterns = config.block.map((rule) =>
      rule.pathPattern === undefined ? undefined : new RegExp(rule.pathPattern),
    );
    this.#limits = config.limits;
    this.#countHeaderBytes = config.limits.maxHeaderBytes < options.maxHeaderSize;
    this.maxBodySize = config.limits.maxBodySize;
    this.#refuseAmbiguous = config.refuseAmbiguousPaths;
    this.poisonCheck = config.poisonCheck;
    this.poisonIgnore = new Set(config.poisonIgnore);
    this.deceptionCheck = config.deceptionCheck;
  }

  /**
   * Every request of the site, before lookup: address rules, filters, limits, then the
   * request rate. Undefined: admitted (counted against the rate).
   */
  check(
    address: string,
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    now: number,
    spelled: string = path,
    http2 = false,
  ): Refusal | undefined {
    const standing = this.standing(address);
    if (standing === 2) return this.#refusedBy(address);
    const limit = this.#overLimit(path, headers, rawHeaders, http2);
    if (limit !== undefined) return { kind: 'limit', rule: limit };
    if (this.#refuseAmbiguous && ambiguousPath(spelled)) return { kind: 'ambiguous', rule: 'ambiguous-path' };
    if (this.#block.length > 0 && this.#blocked(method, path, headers))
      return { kind: 'forbidden', rule: 'block' };
    if (standing === 1 || this.requests === undefined) return undefined;
    const wait = this.requests.take(this.requests.key(address, headers), now);
    return wait === 0
      ? undefined
      : { kind: 'rate', bucket: 'requests', retryAfterMs: wait, limiter: this.requests };
  }

  /** A request about to leave for the origin: counted against the origin-bound rate. */
  checkOrigin(address: string, headers: IncomingHttpHeaders, now: number): Refusal | undefined {
    const origin = this.origin;
    if (origin === undefined || this.standing(address) === 1) return undefined;
    const wait = origin.take(origin.key(address, headers), now);
    return wait === 0 ? undefined : { kind: 'rate', bucket: 'origin', retryAfterMs: wait, limiter: origin };
  }

  /** Counts one action of `rule` (shown in /stats). */
  note(rule: string): void {
    this.actions.set(rule, (this.actions.get(rule) ?? 0) + 1);
  }

  /** What /stats shows of this site's rules. */
  stats(): Record<string, unknown> {
    return {
      rateLimitKeys: this.requests?.gcra.size ?? 0,
      originLimitKeys: this.origin?.gcra.size ?? 0,
      actions: Object.fromEntries(this.actions),
    };
  }

  /** 1: exempt from limits (allow-listed or a trusted proxy); 2: refused; 0: neither. Remembered. */
  standing(address: string): Standing {
    if (this.#noAddressRules) return 0;
    const known = this.#memo.get(address);
    if (known !== undefined) return known;
    let standing: Standing = 0;
    if (this.#allow?.(address)) standing = 1;
    else if (this.#deny?.(address) || (this.#country !== undefined && !this.#country(address))) standing = 2;
    else if (this.#trusted?.(address)) standing = 1;
    if (this.#memo.size >= MEMO_SIZE) this.#memo.clear();
    this.#memo.set(address, standing);
    return standing;
  }

  #refusedBy(address: string): Refusal {
    return { kind: 'forbidden', rule: this.#deny?.(address) ? 'deny' : 'country' };
  }

  #overLimit(
    path: string,
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    http2: boolean,
  ): 'url-length' | 'header-count' | 'header-bytes' | 'body-size' | undefined {
    const limits = this.#limits;
    if (path.length > limits.maxUrlLength) return 'url-length';
    if (http2) return fieldsOverLimit(rawHeaders, limits) ?? bodyOverLimit(headers, limits);
    if (rawHeaders.length > limits.maxHeaders * 2) return 'header-count';
    if (this.#countHeaderBytes) {
      let bytes = 0;
      for (let i = 0; i < rawHeaders.length; i++) bytes += rawHeaders[i]!.length;
      if (bytes > limits.maxHeaderBytes) return 'header-bytes';
    }
    return bodyOverLimit(headers, limits);
  }

  #blocked(method: string, path: string, headers: IncomingHttpHeaders): boolean {
    const type = headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    for (let i = 0; i < this.#block.length; i++) {
      const rule = this.#block[i]!;
      if (rule.methods !== undefined && !rule.methods.includes(method)) continue;
      if (rule.path !== undefined && !path.startsWith(rule.path)) continue;
      const pattern = this.#blockPatterns[i];
      if (pattern !== undefined && !pattern.test(path)) continue;
      if (rule.contentTypes !== undefined && (type === undefined || !rule.contentTypes.includes(type)))
        continue;
      return true;
    }
    return false;
  }
}

/**
 * A block rule naming GET names HEAD too: HEAD is GET without the content (RFC 9110 §9.3.2),
 * and a HEAD miss is filled with a GET, so the origin would carry out the very GET the rule
 * refuses.
 */
function withHead(rule: SecurityConfig['block'][number]): SecurityConfig['block'][number] {
  const methods = rule.methods;
  if (methods === undefined || !methods.includes('GET') || methods.includes('HEAD')) return rule;
  return { ...rule, methods: [...methods, 'HEAD'] };
}

/** Whether the path part of a target (before `?`) holds something a cache and an origin may read differently. */
export function ambiguousPath(target: string): boolean {
  const query = target.indexOf('?');
  return AMBIGUOUS_PATH.test(query === -1 ? target : target.slice(0, query));
}

type Limits = { maxHeaders: number; maxHeaderBytes: number; maxBodySize: number };

function bodyOverLimit(headers: IncomingHttpHeaders, limits: Limits): 'body-size' | undefined {
  const length = headers['content-length'];
  return length !== undefined && Number(length) > limits.maxBodySize ? 'body-size' : undefined;
}

/**
 * HTTP/2: the fields without the pseudo-headers, which carry what HTTP/1.1's request line does
 * (never counted there): a limit of N fields means the same on both. So does a Cookie split into
 * crumbs, one field each (RFC 9113 §8.2.3, as browsers send it): counted as the one field
 * HTTP/1.1 carries, its crumbs joined with "; ".
 */
function fieldsOverLimit(
  rawHeaders: readonly string[],
  limits: Limits,
): 'header-count' | 'header-bytes' | undefined {
  let fields = 0;
  let bytes = 0;
  let cookie = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const value = rawHeaders[i + 1]!;
    if (name === 'cookie') {
      if (cookie) {
        bytes += 2 + value.length;
        continue;
      }
      cookie = true;
    }
    fields++;
    bytes += name.length + value.length;
  }
  if (fields > limits.maxHeaders) return 'header-count';
  return bytes > limits.maxHeaderBytes ? 'header-bytes' : undefined;
}
