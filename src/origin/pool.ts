/**
 * Origins and the pools that reach them (undici, keep-alive). A site's pool asks its
 * selector (selection.ts) for the best origin, and for another one after a retryable
 * failure (docs/origins.md). Each attempt carries the Host of the origin it goes to, and a
 * failure names the origin that failed.
 */
import type { Readable } from 'node:stream';
import type { Pool } from 'undici';
import type { OriginConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import { originError } from './errors.ts';
import { clientOf, type GeoResolver } from './geo.ts';
import {
  failingStatus,
  recordAnswer,
  recordFailure,
  recordSuccess,
  recordWhole,
  retryAfterMs,
} from './outlier.ts';
import { describePool, type PoolPolicy, type PoolView } from './pool-view.ts';
import { RetryBudget } from './retry-budget.ts';
import { type OriginIter, OriginSelector } from './selection.ts';
import { OriginState } from './state.ts';
import { originTls } from './tls.ts';
import { loadUndici, ORIGIN_RESET, originConnector } from './undici.ts';
import { sendUpgrade, type UpgradeResponse } from './upgrade.ts';

export interface OriginRequest {
  method: string;
  path: string;
  /** The client's authority: the Host sent to an origin without its own `hostHeader`. */
  host: string;
  /** End-to-end fields; `host` is set per attempt by the pool. */
  headers: Record<string, string | string[]>;
  body?: Readable | undefined;
  signal?: AbortSignal;
  /** The cache key: what `selection: hash` hashes. */
  key?: string | undefined;
  /**
   * Makes the Strata-Tier, Strata-Fence and Strata-Client fields for the Host sent: called only
   * for origins with `tier: parent` (docs/tiers.md).
   */
  tier?: ((host: string) => { tier: string; fence: string | undefined; client: string }) | undefined;
  /** Told of each interim (1xx) response before the final one (RFC 9110 §15.2). */
  onInterim?: ((status: number, headers: Record<string, string | string[] | undefined>) => void) | undefined;
}

export interface OriginResponse {
  origin: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** ms from sending until headers arrived. */
  ms: number;
  /** Origins tried for this request, this one included (set by the pool). */
  attempts?: number;
  /**
   * The origin's entity tag when the node decodes the body as it arrives and weakens the tag it
   * sends on (compression.ts decodeUnasked): stored as the entry's originEtag, to revalidate with.
   */
  originEtag?: string;
}

export class Origin {
  readonly name: string;
  readonly config: OriginConfig;
  /** Latency, load and health as selection sees them; carried over a reload (see `edge-node.ts`). */
  readonly state: OriginState;
  /** Made on the first request (undici.ts). */
  #pool: Pool | undefined;
  #opening: Promise<Pool> | undefined;
  #closed = false;
  /** Connection options, checked when the origin is made (TLS files are read here). */
  readonly #connect: ReturnType<typeof originTls> & { timeout: number };

  constructor(config: OriginConfig, state?: OriginState) {
    this.name = config.name;
    this.config = config;
    const traits = {
      name: config.name,
      region: config.region,
      weight: config.weight,
      maxConnections: config.maxConnections ?? config.connections,
    };
    this.state = state ?? new OriginState(traits);
    this.state.traits = traits;
    this.state.draining = false;
    this.#connect = { timeout: config.connectTimeout ?? 5000, ...originTls(config) };
  }

  async request(request: OriginRequest): Promise<OriginResponse> {
    const started = performance.now();
    const headers = this.#headers(request);
    // undici starts its response timeout again at each interim (1xx) response: an origin sending
    // 103s (or 102s) without end held the request past origins[].responseTimeout. A request
    // without a body gets the timeout once, from its first interim response. (With a body,
    // undici starts it again as the body is sent: a long upload may legitimately be answered
    // late.)
    const deadline =
      request.body == null && (this.config.responseTimeout ?? 0) > 0
        ? new InterimDeadline(this.config.responseTimeout!)
        : undefined;
    try {
      const pool = this.#pool ?? (await this.#open());
      const onInterim = request.onInterim ? interimListener(request.onInterim) : undefined;
      const response = await pool.request({
        method: request.method as 'GET',
        path: request.path,
        headers,
        body: request.body ?? null,
        // undici's types name AbortSignal and EventEmitter; it takes any addEventListener (InterimDeadline).
        signal: (deadline ? deadline.signal(request.signal) : (request.signal ?? null)) as AbortSignal | null,
        ...(deadline || onInterim
          ? {
              onInfo: (info: { statusCode: number; headers: Record<string, string | string[]> }) => {
                deadline?.start();
                onInterim?.(info);
              },
            }
          : {}),
      });
      deadline?.clear();
      const invalid = invalidResponse(response.statusCode, response.headers);
      if (invalid !== undefined) {
        dropBody(response.body as unknown as Readable);
        throw new EdgeError('EDGE_ERR_ORIGIN_PROTOCOL', `origin ${this.name} sent an invalid response`, {
          origin: this.name,
          cause: new Error(invalid),
        });
      }
      return {
        origin: this.name,
        status: response.statusCode,
        headers: response.headers,
        body: response.body as unknown as Readable,
        ms: performance.now() - started,
      };
    } catch (error) {
      deadline?.clear();
      if (deadline?.expired)
        throw new EdgeError(
          'EDGE_ERR_ORIGIN_TIMEOUT',
          `origin ${this.name} sent no response headers in time`,
          {
            origin: this.name,
            cause: new Error('interim responses only, for longer than the response timeout'),
          },
        );
      // Before any response: undici reports every parser error of a head with a Content-Length
      // as a length mismatch (Content-Length beside Transfer-Encoding, two that disagree): the
      // framing is invalid (RFC 9112 §6.3), no body was cut short.
      if ((error as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')
        throw new EdgeError('EDGE_ERR_ORIGIN_PROTOCOL', `origin ${this.name} sent an invalid response`, {
          origin: this.name,
          cause: error,
        });
      throw originError(error, this.name);
    }
  }

  /** The request's fields with this origin's Host, and the tier fields a parent tier gets. */
  #headers(request: OriginRequest): Record<string, string | string[]> {
    const headers = request.headers;
    headers.host = this.config.hostHeader ?? request.host;
    const tier = this.config.tier === 'parent' ? request.tier?.(headers.host) : undefined;
    if (tier !== undefined) headers['strata-tier'] = tier.tier;
    else delete headers['strata-tier'];
    if (tier?.fence !== undefined) headers['strata-fence'] = tier.fence;
    else delete headers['strata-fence'];
    if (tier !== undefined) headers['strata-client'] = tier.client;
    else delete headers['strata-client'];
    return headers;
  }

  /** A WebSocket handshake, on a connection of its own (upgrade.ts); not counted as the pool's. */
  upgrade(request: OriginRequest): Promise<UpgradeResponse> {
    const { config } = this;
    const { timeout, ...tls } = this.#connect;
    const target = {
      name: this.name,
      url: config.url,
      connectTimeout: timeout,
      responseTimeout: config.responseTimeout,
      bodyTimeout: config.bodyTimeout,
      tls,
    };
    return sendUpgrade(target, request.path, this.#headers(request), request.signal);
  }

  /** The undici pool, made once (undici itself is loaded on the first request of the process). */
  #open(): Promise<Pool> {
    this.#opening ??= loadUndici().then((undici) => {
      if (this.#closed) throw new EdgeError('EDGE_ERR_INTERNAL', `origin ${this.name} is closed`);
      const pool = new undici.Pool(this.config.url, {
        connections: this.config.connections,
        connect: originConnector(undici, this.#connect),
        allowH2: false,
        headersTimeout: this.config.responseTimeout,
        bodyTimeout: this.config.bodyTimeout,
        keepAliveTimeout: 4000,
        pipelining: 1,
      });
      this.#pool = pool;
      return pool;
    });
    return this.#opening;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool ?? (await this.#opening?.catch(() => undefined));
    await pool?.close();
  }

  /** Ends every connection at once, failing requests still running (a drain past its deadline). */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool ?? (await this.#opening?.catch(() => undefined));
    await pool?.destroy();
  }
}

/** undici's informational callback, passing on 1xx other than 100 and 101 (never the origin's to send here). */
function interimListener(
  onInterim: NonNullable<OriginRequest['onInterim']>,
): (info: { statusCode: number; headers: Record<string, string | string[]> }) => void {
  return (info) => {
    if (info.statusCode > 101 && info.statusCode < 200) onInterim(info.statusCode, info.headers);
  };
}

/**
 * The response timeout of a request that has had an interim response, counted once from it.
 * It is the request's signal for undici, made for every origin request with a response timeout,
 * for a timer that almost never starts: the least undici takes as a signal, an object with
 * addEventListener and removeEventListener (and no `aborted`, which undici reads as a real
 * AbortSignal's). An AbortController cost each request an EventTarget and its listener
 * bookkeeping, an EventEmitter its construction and a `once` wrapper. With a client's signal as
 * well, both are combined.
 */
class InterimDeadline {
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;
  #controller: AbortController | undefined;
  /** What undici listens with (one per request; a second one would be kept as well). */
  #listeners: (() => void)[] | undefined;
  #listener: (() => void) | undefined;
  expired = false;
  /** Why the request was aborted, read by undici once it is told. */
  reason: Error | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  signal(client: AbortSignal | undefined): AbortSignal | InterimDeadline {
    if (client === undefined) return this;
    this.#controller = new AbortController();
    return AbortSignal.any([client, this.#controller.signal]);
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === undefined) this.#listener = listener;
    else this.#listeners = [...(this.#listeners ?? []), listener];
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined;
    else if (this.#listeners !== undefined)
      this.#listeners = this.#listeners.filter((one) => one !== listener);
  }

  start(): void {
    if (this.#timer !== undefined || this.expired) return;
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.reason = new Error('interim responses only, for longer than the response timeout');
      this.#controller?.abort(this.reason);
      const listeners = [this.#listener, ...(this.#listeners ?? [])];
      this.#listener = undefined;
      this.#listeners = undefined;
      for (const listener of listeners) listener?.();
    }, this.#ms);
    this.#timer.unref();
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** Told of every failed attempt, with the origin that failed (metrics, logs). */
export type FailureListener = (origin: string, error: EdgeError) => void;

/** Told of every attempt's end: its origin, and the status or the error (metrics). */
export type AttemptListener = (origin: OriginState, outcome: AttemptOutcome) => void;

export type AttemptOutcome = (
  | { kind: 'response'; status: number; ms: number }
  | { kind: 'error'; error: EdgeError }
) & {
  /** Whether the request went on to another origin after this attempt. */
  retried: boolean;
  /** Whether this attempt ejected the origin. */
  ejected: boolean;
};

/** What a site's pool needs besides its origins: the site's policy, where clients are, a clock. */
export type { PoolPolicy } from './pool-view.ts';

export interface PoolOptions {
  policy?: PoolPolicy;
  backups?: readonly Origin[];
  nodeRegion?: string | undefined;
  geo?: GeoResolver | undefined;
  /** Whether a peer is a trusted proxy (for the client address in X-Forwarded-For). */
  trusted?: (address: string) => boolean;
  /** A monotonic clock in ms (performance.now by default); injected by tests. */
  now?: () => number;
  random?: () => number;
  onFailure?: FailureListener;
  onAttempt?: AttemptListener;
  /** A retry was due but the budget was spent. */
  onBudgetExhausted?: () => void;
}

export const DEFAULT_POLICY: PoolPolicy = {
  selection: 'latency',
  prefer: 'node-region',
  retry: { attempts: 3, budgetPercent: 20, minPerSecond: 10 },
  outlier: { consecutiveFailures: 5, baseEjection: 10_000, maxEjection: 300_000, maxEjectedPercent: 50 },
  slowStart: 10_000,
};

type Attempt =
  | { kind: 'response'; response: OriginResponse; ejected: boolean }
  | { kind: 'error'; error: EdgeError; ejected: boolean };

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** Causes that mean no byte of the request reached the origin. */
const NEVER_SENT: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * A site's origins and the attempt loop: select → fetch → on a retryable failure select
 * again, always another origin, within `retry.attempts` and the retry budget. Retried:
 * a request that cannot have reached the origin (connect refused, connect timeout, DNS, TLS,
 * or, for an idempotent method, a connection reset before any response byte), and a
 * 502/503/504 to a GET or HEAD without a body (its body discarded; nothing went to the client
 * yet). Never a request with a body once sent, nor after the client went away.
 */
export class OriginPool {
  readonly origins: readonly Origin[];
  readonly backups: readonly Origin[];
  readonly selector: OriginSelector;
  readonly budget: RetryBudget;
  readonly policy: PoolPolicy;
  readonly #options: PoolOptions;
  readonly #now: () => number;
  readonly #members: readonly OriginState[];
  readonly #byState = new Map<OriginState, Origin>();

  constructor(origins: readonly Origin[], options: PoolOptions | FailureListener = {}) {
    if (origins.length === 0) throw new EdgeError('EDGE_ERR_ORIGIN_UNAVAILABLE', 'a site has no origins');
    const opts = typeof options === 'function' ? { onFailure: options } : options;
    this.origins = origins;
    this.backups = opts.backups ?? [];
    this.policy = opts.policy ?? DEFAULT_POLICY;
    this.#options = opts;
    this.#now = opts.now ?? (() => performance.now());
    this.#members = origins.map((origin) => origin.state);
    for (const origin of [...origins, ...this.backups]) this.#byState.set(origin.state, origin);
    this.selector = new OriginSelector(
      this.#members,
      this.backups.map((origin) => origin.state),
      { selection: this.policy.selection, slowStart: this.policy.slowStart },
      this.#now,
      opts.random,
    );
    this.budget = new RetryBudget(this.policy.retry, this.#now);
  }

  /** What /stats shows (pool-view.ts). */
  describe(): PoolView {
    return describePool(this.selector, this.policy, this.#options.nodeRegion, this.budget.exhausted);
  }

  /** The origins for one request, best first (the region preferred per the site's `prefer`). */
  iter(request: Pick<OriginRequest, 'key' | 'headers'>): OriginIter {
    return this.selector.iter({ region: this.#region(request), key: request.key });
  }

  #region(request: Pick<OriginRequest, 'headers'>): string | undefined {
    switch (this.policy.prefer) {
      case 'none':
        return undefined;
      case 'node-region':
        return this.#options.nodeRegion;
      default: {
        const geo = this.#options.geo;
        const { 'x-forwarded-for': xff, forwarded } = request.headers;
        const client = clientOf(
          typeof xff === 'string' ? xff : undefined,
          typeof forwarded === 'string' ? forwarded : undefined,
          this.#options.trusted ?? (() => false),
        );
        if (geo === undefined || client === undefined) return this.#options.nodeRegion;
        const regions = geo.regionsOf(client);
        const known = [...this.#members, ...this.selector.backups];
        return (
          regions.find((region) => known.some((origin) => origin.traits.region === region)) ??
          this.#options.nodeRegion
        );
      }
    }
  }

  /**
   * Sends the request to the best origin, and to the next on a retryable failure. Every failed
   * attempt is reported; the error thrown (or the 5xx returned) is the last one, naming its origin.
   */
  request(request: OriginRequest): Promise<OriginResponse> {
    return this.#send(request, false);
  }

  /**
   * A WebSocket handshake (edge/tunnel.ts), chosen, retried and counted as a GET without a body
   * is; the answer carries the origin's connection when it switched protocols.
   */
  upgrade(request: OriginRequest): Promise<UpgradeResponse> {
    return this.#send(request, true) as Promise<UpgradeResponse>;
  }

  async #send(request: OriginRequest, upgrade: boolean): Promise<OriginResponse | UpgradeResponse> {
    this.budget.request();
    const iter = this.iter(request);
    const idempotent = IDEMPOTENT.has(request.method);
    const replayable = request.body === undefined;
    let origin = this.#byState.get(iter.next()!)!;
    for (;;) {
      // One attempt, its answer or failure classed by #answered and #failed: no async frame of
      // its own on every miss and pass.
      const state = origin.state;
      const token = state.start(this.#now());
      let outcome: Attempt;
      try {
        const response = upgrade ? await origin.upgrade(request) : await origin.request(request);
        outcome = this.#answered(state, token, response, request, upgrade);
      } catch (error) {
        outcome = this.#failed(state, token, error as EdgeError, request);
      }
      // A body sent once cannot be sent again (a GET with a body included): its 5xx is the answer.
      const retryable =
        !request.signal?.aborted &&
        (outcome.kind === 'response'
          ? replayable &&
            (request.method === 'GET' || request.method === 'HEAD') &&
            failingStatus(outcome.response.status)
          : neverSent(outcome.error, idempotent, replayable));
      // The budget is asked before another origin is taken: a refused retry must not move
      // round robin on (nor count as an attempt), or every first try lands on one origin.
      const wanted = retryable && iter.attempts < this.policy.retry.attempts && iter.hasAnother();
      const retried = wanted && this.budget.tryRetry();
      const next = retried ? iter.next() : undefined;
      if (retried) origin.state.retries++;
      else if (wanted) this.#options.onBudgetExhausted?.();
      this.#report(origin.state, outcome, retried);
      if (!retried) {
        if (outcome.kind === 'error') throw Object.assign(outcome.error, { attempts: iter.attempts });
        outcome.response.attempts = iter.attempts;
        return outcome.response;
      }
      if (outcome.kind === 'response') dropBody(outcome.response.body);
      origin = this.#byState.get(next!)!;
    }
  }

  #answered(
    state: OriginState,
    token: number,
    response: OriginResponse,
    request: OriginRequest,
    upgrade: boolean,
  ): Attempt {
    const now = this.#now();
    state.finish(token);
    let ejected = false;
    if (failingStatus(response.status)) {
      const wait =
        response.status === 503 ? retryAfterMs(response.headers['retry-after'], Date.now()) : undefined;
      ejected = recordFailure(state, this.policy.outlier, this.#members, now, wait);
    } else if (upgrade) {
      recordSuccess(state, response.ms, now);
    } else {
      recordAnswer(state, response.ms, now);
      this.#watchBody(state, response.body, request);
    }
    return { kind: 'response', response, ejected };
  }

  #failed(state: OriginState, token: number, failure: EdgeError, request: OriginRequest): Attempt {
    state.finish(token);
    // The client going away, or its request body failing (too slow, too large), is not the
    // origin failing: a slow-body client must not be able to eject a site's origins.
    const clientFault = request.signal?.aborted === true || failure.code.startsWith('EDGE_ERR_CLIENT_');
    const ejected = !clientFault && recordFailure(state, this.policy.outlier, this.#members, this.#now());
    return { kind: 'error', error: failure, ejected };
  }

  /**
   * An answer is a success once its body ended; a body the origin cut short (a reset, a stall
   * past bodyTimeout, bad framing) is a failure against it, as a failure before the headers is:
   * an origin that answers headers fast and then drops every body must not keep its traffic.
   * What the client or the node ends (the client leaving, a body nobody reads) is no failure.
   */
  #watchBody(state: OriginState, body: Readable, request: OriginRequest): void {
    let fault: EdgeError | undefined;
    body.on('error', (error) => {
      if (fault !== undefined || request.signal?.aborted === true) return;
      const failure = originError(error, state.name);
      if (BODY_FAULTS.has(failure.code)) fault = failure;
    });
    body.on('close', () => {
      if (fault === undefined) return recordWhole(state);
      const ejected = recordFailure(state, this.policy.outlier, this.#members, this.#now());
      this.#options.onAttempt?.(state, { kind: 'error', error: fault, retried: false, ejected });
    });
  }

  #report(state: OriginState, outcome: Attempt, retried: boolean): void {
    const { ejected } = outcome;
    if (outcome.kind === 'error') {
      this.#options.onFailure?.(state.name, outcome.error);
      this.#options.onAttempt?.(state, { kind: 'error', error: outcome.error, retried, ejected });
    } else {
      const { status, ms } = outcome.response;
      this.#options.onAttempt?.(state, { kind: 'response', status, ms, retried, ejected });
    }
  }
}

/** What a body ended by the origin is classed as (originError): a reset or stall, bad framing. */
const BODY_FAULTS: ReadonlySet<string> = new Set([
  'EDGE_ERR_ORIGIN_BODY_INCOMPLETE',
  'EDGE_ERR_ORIGIN_PROTOCOL',
]);

/** Whether a failed attempt cannot have reached the origin (or, idempotent, reached nothing that matters). */
function neverSent(error: EdgeError, idempotent: boolean, replayable: boolean): boolean {
  if (!replayable) return false;
  const cause = (error.cause as { code?: string } | undefined)?.code ?? '';
  if (NEVER_SENT.has(cause) || cause.startsWith('ERR_TLS') || cause.includes('CERT')) return true;
  // A reused keep-alive connection the origin closed: reset before any response byte.
  // RFC 9110 §9.2.2: an idempotent request may be sent again.
  return (
    idempotent &&
    (cause === ORIGIN_RESET || cause === 'ECONNRESET' || cause === 'UND_ERR_SOCKET' || cause === 'EPIPE')
  );
}

/**
 * Why an origin's response cannot be passed on, though undici parsed it: a status outside 100-599
 * (RFC 9110 §15), or a transfer coding other than chunked (RFC 9112 §6.1: undici decodes chunked
 * only, and a body in `gzip` or `gzip, chunked` would reach the client, and the cache, still coded).
 */
function invalidResponse(
  status: number,
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  if (status < 100 || status > 599) return `status ${status}`;
  const coding = headers['transfer-encoding'];
  if (coding !== undefined && String(coding).trim().toLowerCase() !== 'chunked')
    return `Transfer-Encoding: ${String(coding)}`;
  return undefined;
}

/**
 * Drops a response body the client will not see (a 503 being retried; a fill's body that nothing
 * reads nor stores), keeping the connection if cheap: a body of at most 64 KiB is read to its
 * end, a longer one (or one of unknown length that runs past it) aborted, the connection closed.
 */
export function dropBody(body: Readable): void {
  const dump = (body as { dump?: (options: { limit: number }) => Promise<void> }).dump;
  body.on('error', () => {});
  if (dump) dump.call(body, { limit: 64 * 1024 }).catch(() => body.destroy());
  else body.destroy();
}
