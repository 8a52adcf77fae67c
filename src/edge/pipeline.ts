/**
 * The request pipeline: receive → hash → lookup → (deliver | collapse → fetch → store →
 * deliver) → log. A fresh hit runs synchronously from receive to the first byte written;
 * everything that waits on an origin runs in `forward`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LeaderOutcome } from '../cache/collapse.ts';
import { type Fill, Fill as FillImpl, FillReader } from '../cache/fill.ts';
import { primaryKey, storageKey } from '../cache/key.ts';
import { urlsToInvalidate } from '../cache/policy/invalidation.ts';
import {
  decideReuse,
  requestDirectives,
  type StoredFreshness,
  withinStaleIfError,
} from '../cache/policy/reuse.ts';
import { secondaryKey } from '../cache/policy/vary.ts';
import { EdgeError } from '../errors.ts';
import { whenDrained } from '../http/connection-guard.ts';
import { appendVia, endToEndResponseHeaders } from '../http/headers.ts';
import { formatCacheStatus } from '../observability/cache-status.ts';
import { errorDetail } from '../origin/errors.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { createContext, type RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { type Combinable, combinable, combinePartial } from './phases/combine.ts';
import { deliverStored } from './phases/deliver.ts';
import { cameBack, fetchOrigin } from './phases/fetch.ts';
import { hash } from './phases/hash.ts';
import { logRequest } from './phases/log.ts';
import { type LookupOutcome, lookup } from './phases/lookup.ts';
import { receive } from './phases/receive.ts';
import { relayedHeaders, sendError } from './phases/respond.ts';
import { planStore, type StorePlan } from './phases/store.ts';
import { matchesStored, refreshedRecord } from './revalidate.ts';

type Found = Extract<LookupOutcome, { kind: 'found' }>;

/** Origin statuses that stale-if-error may hide (RFC 5861 §4). */
const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);
/** Attempts at the collapse lock before a request fetches on its own. */
const MAX_ATTEMPTS = 3;
/** Leaders of one key that may fail in a row before its waiters are answered the error. */
const MAX_ELECTIONS = 3;

export class Pipeline {
  readonly edge: Edge;
  readonly scheme: 'http' | 'https';

  constructor(edge: Edge, scheme: 'http' | 'https' = 'http') {
    this.edge = edge;
    this.scheme = scheme;
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const edge = this.edge;
    const ctx = createContext(req, res, edge.now(), this.scheme);
    if (!receive(edge, ctx)) return this.#logOnClose(ctx);
    hash(ctx);
    this.#route(ctx, 1);
  };

  /** The log phase runs when the client response closes (for anything not answered at once). */
  #logOnClose(ctx: RequestContext): void {
    if (ctx.closeHooked) return;
    ctx.closeHooked = true;
    ctx.res.once('close', () => logRequest(this.edge, ctx));
  }

  #route(ctx: RequestContext, attempt: number): void {
    const found = lookup(this.edge, ctx);
    if (found.kind === 'found') {
      ctx.id = found.id;
      const reuse = found.reuse.kind;
      if (reuse === 'fresh' || reuse === 'stale-allowed' || reuse === 'stale-while-revalidate') {
        ctx.lookup =
          reuse === 'fresh' ? 'hit' : reuse === 'stale-allowed' ? 'stale' : 'stale-while-revalidate';
        ctx.cacheStatus.hit = true;
        // A hit answered at once is logged at once: no listener, no later event.
        if (deliverStored(this.edge, ctx, found.record)) logRequest(this.edge, ctx, true);
        else this.#logOnClose(ctx);
        if (reuse === 'stale-while-revalidate') this.#revalidateInBackground(ctx, found);
        return;
      }
    }
    this.#logOnClose(ctx);
    // RFC 9111 §5.2.1.7: only-if-cached — "respond either with a stored response or a 504".
    if (
      found.kind !== 'uncacheable-method' &&
      /only-if-cached/i.test(String(ctx.req.headers['cache-control'] ?? ''))
    ) {
      ctx.cacheStatus.fwd = 'miss';
      sendError(
        this.edge,
        ctx,
        new EdgeError('EDGE_ERR_CLIENT_ONLY_IF_CACHED', 'not in cache (only-if-cached)'),
        false,
      );
      return;
    }
    const work = this.#forward(ctx, found, attempt).catch((error: unknown) => {
      this.edge.log.error({ err: error, url: ctx.key }, 'request failed inside the node');
      sendError(this.edge, ctx, new EdgeError('EDGE_ERR_INTERNAL', 'internal error', { cause: error }), true);
    });
    this.#track(work);
  }

  #track(work: Promise<unknown>): void {
    this.edge.work.add(work);
    void work.finally(() => this.edge.work.delete(work));
  }

  async #forward(ctx: RequestContext, found: LookupOutcome, attempt: number): Promise<void> {
    const edge = this.edge;
    if (found.kind === 'uncacheable-method') return this.#pass(ctx, 'method');
    const headers = ctx.req.headers;
    // HEAD and Range misses are forwarded as they are, unless a fill of the key is running:
    // then they wait for it like any follower and are answered from the stored response.
    const filling = edge.collapse.pending(ctx.storage) !== undefined;
    if (ctx.method === 'HEAD' && found.kind !== 'found' && !filling)
      return this.#pass(ctx, found.reason === 'vary-miss' ? 'vary-miss' : 'miss', 'head');
    // RFC 9111 §3.3: a Range miss with no fill running is fetched as it is, its 206 stored as a
    // partial entry; such a fill is never shared (other requests want other bytes).
    const ranged = headers.range !== undefined && found.kind !== 'found' && !filling;
    const fwd =
      found.kind === 'found'
        ? found.reuse.kind === 'revalidate' && !found.reuse.stale
          ? 'request'
          : 'stale'
        : found.reason;
    // RFC 9111 §3.4: a Range reaching past a stored partial with a strong ETag asks only for the rest.
    const partial = ranged ? combinable(edge, ctx) : undefined;
    ctx.cacheStatus.fwd = partial ? 'partial' : fwd;
    // A request that came back to this node (a loop) never waits for a fill: the fill may be
    // its own first pass, waiting for it. It is refused in fetch.
    const collapsible =
      !ranged &&
      headers.authorization === undefined &&
      !edge.collapse.isHitForPass(ctx.storage) &&
      !cameBack(edge, ctx);
    const pending = collapsible ? edge.collapse.pending(ctx.storage) : undefined;
    if (pending !== undefined) return this.#follow(ctx, pending, found, fwd, attempt);
    const settle = collapsible ? edge.collapse.lead(ctx.storage) : () => {};
    const leading = collapsible ? edge.collapse.pending(ctx.storage)?.outcome : undefined;
    // Workers > 1: another worker may already lead this key (undefined in one process).
    const claim = collapsible ? edge.collapse.claim(ctx.storage, true) : undefined;
    const verdict = claim === undefined ? undefined : await claim;
    if (verdict !== undefined && verdict.kind !== 'lead') {
      if (ctx.res.destroyed) return;
      if (verdict.kind === 'look-again' && attempt < MAX_ATTEMPTS) return this.#route(ctx, attempt + 1);
      return this.#pass(ctx, fwd, verdict.kind === 'timeout' ? 'collapse-timeout' : undefined);
    }
    const stored = found.kind === 'found' ? found : undefined;
    const requestTime = edge.now();
    // Taken before the origin is asked: a purge from here on voids what this fetch brings.
    const generation = edge.store.purgeGeneration(ctx.storage);
    let response: OriginResponse;
    try {
      response = await fetchOrigin(edge, ctx, {
        fill: true,
        method: 'GET',
        validate: stored?.record,
        range: ranged,
        combine: partial,
      });
    } catch (error) {
      settle({ kind: 'failed', error: error as EdgeError });
      return this.#originFailed(ctx, stored, error as EdgeError);
    }
    const responseTime = edge.now();
    this.#noteOrigin(ctx, response);
    if (
      stored &&
      ERROR_STATUSES.has(response.status) &&
      withinStaleIfError(stored.record, stored.directives, ctx.now)
    ) {
      settle({ kind: 'failed', error: originFailing(response.status) });
      discard(response.body);
      return this.#serveStaleOnError(ctx, stored, `origin answered ${response.status}`);
    }
    if (response.status === 304 && stored) {
      discard(response.body);
      // Settled once the refresh is committed, so followers looking again find it fresh.
      try {
        return await this.#refreshAndDeliver(ctx, stored, response, requestTime, responseTime, generation);
      } finally {
        settle({ kind: 'look-again' });
      }
    }
    if (partial && (await this.#combine(ctx, partial, response, requestTime, responseTime, generation)))
      return;
    const plan = planStore(edge, ctx, response, requestTime, responseTime);
    if (!plan.storable) {
      // A failing origin is not an uncacheable key: followers elect again (a bounded number
      // of times), and no hit-for-pass marker outlives the failure.
      settle(
        ERROR_STATUSES.has(response.status)
          ? { kind: 'failed', error: originFailing(response.status) }
          : { kind: 'uncacheable' },
      );
      ctx.insert = `not-storable:${plan.reason}`;
      ctx.cacheStatus.detail = plan.reason;
      return this.#relay(ctx, response);
    }
    ctx.cacheStatus.stored = true;
    const writer = edge.store.createWriter(ctx.storage);
    const fill = new FillImpl(edge.store, writer, true);
    const clientHeaders = this.#fillHeaders(response);
    let markDone!: () => void;
    const done = new Promise<void>((resolve) => {
      markDone = resolve;
    });
    settle({
      kind: 'shared',
      fill,
      status: response.status,
      headers: sharedHeaders(plan),
      vary: plan.record.vary,
      secondaryKey: plan.record.secondaryKey,
      record: plan.record,
      tags: plan.record.tags,
      done,
    });
    ctx.id = plan.id;
    ctx.holdLog = true;
    this.#readFill(ctx, fill, response.status, clientHeaders);
    try {
      await this.#runFill(ctx, fill, response, plan.contentLength, (bodyWriter, last) =>
        bodyWriter.commit(
          plan.id,
          plan.record,
          last,
          () =>
            edge.store.purgeGeneration(ctx.storage) === generation &&
            !(plan.record.range !== undefined && holdsFullEntry(edge, plan.id)),
        ),
      );
    } finally {
      if (collapsible) edge.collapse.release(ctx.storage, leading);
      markDone();
      ctx.holdLog = false;
      logRequest(edge, ctx);
    }
  }

  /**
   * RFC 9111 §3.4: the origin's answer to a request for the rest of a partial entry. A 206 of the
   * same strong ETag is combined with the piece; a 200 of known length (If-Range did not match,
   * or the origin ignores Range) is stored as usual and the client's range answered from it.
   * False: nothing was done, the response goes the usual way.
   */
  async #combine(
    ctx: RequestContext,
    partial: Combinable,
    response: OriginResponse,
    requestTime: number,
    responseTime: number,
    generation: string,
  ): Promise<boolean> {
    const edge = this.edge;
    if (response.status === 206)
      return combinePartial(edge, ctx, partial, response, requestTime, responseTime, generation);
    if (response.status !== 200) return false;
    const plan = planStore(edge, ctx, response, requestTime, responseTime);
    if (!plan.storable || plan.contentLength === undefined) return false;
    ctx.id = plan.id;
    ctx.holdLog = true;
    const fill = new FillImpl(edge.store, edge.store.createWriter(ctx.storage), true);
    try {
      await this.#runFill(ctx, fill, response, plan.contentLength, (writer, last) =>
        writer.commit(
          plan.id,
          plan.record,
          last,
          () => edge.store.purgeGeneration(ctx.storage) === generation,
        ),
      );
      const chunks = fill.completeChunks;
      if (chunks === undefined || fill.bodyId === undefined) {
        sendError(
          edge,
          ctx,
          new EdgeError('EDGE_ERR_ORIGIN_BODY_INCOMPLETE', 'origin response incomplete'),
          false,
        );
        return true;
      }
      ctx.cacheStatus.stored = ctx.insert === 'stored';
      // A superseded body stays readable for its grace period: the client is answered from it.
      deliverStored(edge, ctx, { ...plan.record, bodyId: fill.bodyId, chunks, size: fill.received });
      return true;
    } finally {
      ctx.holdLog = false;
    }
  }

  /** Drives a fill from the origin body to its commit, recording the insert result. */
  async #runFill(
    ctx: RequestContext,
    fill: Fill,
    response: OriginResponse,
    contentLength: number | undefined,
    commit: Parameters<Fill['finish']>[0],
  ): Promise<void> {
    const edge = this.edge;
    const maxObject = edge.config.cache.maxObjectSize;
    let tooLarge = false;
    response.body.on('data', () => {
      if (!tooLarge && fill.received > maxObject) {
        tooLarge = true;
        fill.stopStoring();
      }
    });
    await fill.consume(response.body);
    if (fill.state === 'failed' || (contentLength !== undefined && fill.received !== contentLength)) {
      if (fill.state !== 'failed') fill.fail(new Error('origin body length differs from Content-Length'));
      ctx.insert = 'aborted-incomplete';
      edge.log.warn(
        { url: ctx.key, origin: ctx.origin, received: fill.received, err: fill.error?.message },
        'origin response incomplete; not stored',
      );
      return;
    }
    if (tooLarge) {
      ctx.insert = 'aborted-too-large';
      return;
    }
    const result = await fill.finish(commit);
    ctx.insert =
      result === 'stored' ? 'stored' : result === 'superseded' ? 'aborted-purged' : 'aborted-store-failed';
    if (result === 'stored' && fill.bodyId && edge.store.memory.accepts(fill.received)) {
      const body = fill.wholeBody();
      if (body) edge.store.memory.set(fill.bodyId, body);
    }
  }

  /** Header list for clients reading a fill (each adds its own Cache-Status). */
  #fillHeaders(response: OriginResponse): string[] {
    const list = endToEndResponseHeaders(response.headers, this.edge.stripResponse);
    list.push('Via', appendVia(response.headers.via, '1.1', this.edge.name));
    return list;
  }

  #readFill(ctx: RequestContext, fill: Fill, status: number, headers: string[]): void {
    const res = ctx.res;
    res.writeHead(status, [...headers, 'Cache-Status', formatCacheStatus(this.edge.name, ctx.cacheStatus)]);
    if (ctx.method === 'HEAD' || status === 204 || status === 304) {
      res.end();
      return;
    }
    const reader = new FillReader(
      fill,
      res,
      () => {
        ctx.bytes += reader.bytes;
      },
      (resume) => whenDrained(res, resume),
    );
    reader.pump();
  }

  /**
   * A follower: waits for the leader of its key and reads the leader's fill when it may reuse
   * that response as it is — fresh for its request, of its Vary variant (Pingora's lock:
   * done → read; give up → fetch on your own). Followers get the header set a stored copy has,
   * never the leader's own (its Set-Cookie stays its own).
   */
  async #follow(
    ctx: RequestContext,
    pending: NonNullable<ReturnType<Edge['collapse']['pending']>>,
    found: LookupOutcome,
    fwd: RequestContext['cacheStatus']['fwd'],
    attempt: number,
  ): Promise<void> {
    const edge = this.edge;
    const abort = new AbortController();
    ctx.res.once('close', () => abort.abort());
    const outcome = await edge.collapse.follow(pending, edge.collapseTimeoutMs, abort.signal);
    if (ctx.res.destroyed) return;
    if (outcome.kind === 'look-again' && attempt < MAX_ATTEMPTS) return this.#route(ctx, attempt + 1);
    if (outcome.kind === 'failed') return this.#afterFailedLeader(ctx, found, outcome, attempt);
    if (
      outcome.kind === 'shared' &&
      outcome.fill.joinable &&
      this.#sameVariant(ctx, outcome.vary, outcome.secondaryKey)
    ) {
      // The leader's body has all arrived and is being committed: a request sent after the first
      // response ended sees what it stored (a no-cache entry is then revalidated, conditionally).
      const reuse = outcome.fill.state === 'done' ? 'after-commit' : this.#followerReuse(ctx, outcome.record);
      if (reuse === 'join') {
        ctx.lookup = 'collapsed';
        edge.metrics.collapsed.inc();
        ctx.cacheStatus.collapsed = true;
        return this.#readFill(ctx, outcome.fill, outcome.status, outcome.headers);
      }
      if (reuse === 'after-commit') {
        // A conditional, range or HEAD to answer from a fresh response: once it is stored.
        await outcome.done;
        if (ctx.res.destroyed) return;
        if (attempt < MAX_ATTEMPTS) return this.#route(ctx, attempt + 1);
      }
    }
    // uncacheable, not reusable as it is, timeout, another variant: fetch on our own, never
    // overwriting the leader's fill
    return this.#pass(ctx, fwd, outcome.kind === 'timeout' ? 'collapse-timeout' : undefined);
  }

  /** Whether a follower may read the fill now, after its commit, or not at all. */
  #followerReuse(ctx: RequestContext, record: StoredFreshness): 'join' | 'after-commit' | 'own' {
    const headers = ctx.req.headers;
    const directives = requestDirectives(headers['cache-control'], headers.pragma as string | undefined);
    // Zero lifetime, no-cache, stale (under max-stale or a grace too): not for another request.
    if (decideReuse(record, directives, this.edge.now()).kind !== 'fresh') return 'own';
    if (ctx.method === 'HEAD' || headers.range !== undefined) return 'after-commit';
    if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined)
      return 'after-commit';
    return 'join';
  }

  /**
   * The leader failed: elect a new one, unless leaders in a row failed for this key; then a
   * failing origin is not asked once more per waiting client — they get stale or the error.
   */
  #afterFailedLeader(
    ctx: RequestContext,
    found: LookupOutcome,
    outcome: Extract<LeaderOutcome, { kind: 'failed' }>,
    attempt: number,
  ): void {
    if ((outcome.elections ?? 1) < MAX_ELECTIONS && attempt < MAX_ATTEMPTS)
      return this.#route(ctx, attempt + 1);
    const error = outcome.error ?? originFailing(502);
    if (found.kind === 'found' && withinStaleIfError(found.record, found.directives, ctx.now))
      return this.#serveStaleOnError(ctx, found, error.code);
    ctx.lookup = 'error';
    sendError(this.edge, ctx, error, false);
  }

  #sameVariant(ctx: RequestContext, vary: string[], leaderKey: string): boolean {
    return vary.length === 0 || secondaryKey(vary, ctx.req.headers) === leaderKey;
  }

  #noteOrigin(ctx: RequestContext, response: OriginResponse): void {
    ctx.origin = response.origin;
    ctx.originStatus = response.status;
    ctx.originMs = response.ms;
    ctx.cacheStatus.fwdStatus = response.status;
    this.edge.metrics.originRequests.labels(response.origin, `${Math.floor(response.status / 100)}xx`).inc();
    this.edge.metrics.originLatency.labels(response.origin).observe(response.ms / 1000);
  }

  #originFailed(ctx: RequestContext, stored: Found | undefined, error: EdgeError): void {
    if (error.source === 'client') {
      // A request body too slow or cut short: the client's doing, not an origin failure.
      ctx.lookup = 'rejected';
      return sendError(this.edge, ctx, error, true);
    }
    // Each failed attempt was counted against its origin by the pool (edge-node.ts).
    ctx.origin = error.origin;
    if (stored && withinStaleIfError(stored.record, stored.directives, ctx.now)) {
      ctx.error = error;
      return this.#serveStaleOnError(ctx, stored, error.code);
    }
    ctx.lookup = 'error';
    this.edge.log.warn(
      { err: error.message, code: error.code, detail: errorDetail(error), url: ctx.key },
      'origin request failed',
    );
    sendError(this.edge, ctx, error, false);
  }

  #serveStaleOnError(ctx: RequestContext, stored: Found, why: string): void {
    ctx.lookup = 'stale-if-error';
    ctx.cacheStatus.fwd = 'stale';
    ctx.cacheStatus.detail = 'stale-if-error';
    this.edge.log.info({ url: ctx.key, why }, 'served stale: origin failing');
    deliverStored(this.edge, ctx, stored.record);
  }

  async #refreshAndDeliver(
    ctx: RequestContext,
    stored: Found,
    response: OriginResponse,
    requestTime: number,
    responseTime: number,
    generation: unknown,
  ): Promise<void> {
    ctx.lookup = 'revalidated';
    const record = matchesStored(stored.record, response)
      ? refreshedRecord(this.edge, ctx, stored.record, response, requestTime, responseTime)
      : stored.record;
    if (record !== stored.record) {
      const ok = await this.edge.store.refresh(stored.id, record, generation).catch(() => false);
      ctx.insert = ok ? 'updated' : 'not-updated';
    }
    deliverStored(this.edge, ctx, record);
  }

  /** Sends the request to the origin and relays the answer unstored. */
  async #pass(
    ctx: RequestContext,
    fwd: RequestContext['cacheStatus']['fwd'],
    detail?: string,
  ): Promise<void> {
    ctx.lookup =
      fwd === 'method' ? 'pass' : fwd === 'bypass' ? 'bypass' : ctx.lookup === 'miss' ? 'miss' : 'pass';
    ctx.cacheStatus.fwd = fwd;
    if (detail) ctx.cacheStatus.detail = detail;
    let response: OriginResponse;
    try {
      response = await fetchOrigin(this.edge, ctx, { fill: false });
    } catch (error) {
      return this.#originFailed(ctx, undefined, error as EdgeError);
    }
    this.#noteOrigin(ctx, response);
    if (fwd === 'method') await this.#invalidateAfterUnsafe(ctx, response);
    this.#relay(ctx, response);
  }

  /** RFC 9111 §4.4: invalidate the target (and same-origin Location/Content-Location). */
  async #invalidateAfterUnsafe(ctx: RequestContext, response: OriginResponse): Promise<void> {
    const location = response.headers.location;
    const contentLocation = response.headers['content-location'];
    const urls = urlsToInvalidate(
      ctx.method,
      response.status,
      ctx.key,
      typeof location === 'string' ? location : undefined,
      typeof contentLocation === 'string' ? contentLocation : undefined,
    );
    // The target's key as stored (URL parsing would rewrite its path); Location and
    // Content-Location are resolved against it.
    if (urls.length === 0) return; // a safe method, or an error response: nothing is invalidated
    const keys = new Set([ctx.storage]);
    for (const url of urls.slice(1)) {
      const parsed = new URL(url);
      keys.add(
        storageKey(
          primaryKey(this.scheme, parsed.host, parsed.pathname + parsed.search, ctx.site!.sortQuery),
        ),
      );
    }
    for (const key of keys) await this.edge.store.invalidateKey(key).catch(() => 0);
  }

  #relay(ctx: RequestContext, response: OriginResponse): void {
    const res = ctx.res;
    res.writeHead(response.status, relayedHeaders(this.edge, ctx, response.headers, this.edge.stripResponse));
    if (ctx.method === 'HEAD' || response.status === 204 || response.status === 304) {
      discard(response.body);
      res.end();
      return;
    }
    // Piped by hand: stream.pipeline() builds an AbortController and a DOMException per
    // response, a measurable share of the pass path's CPU.
    const body = response.body;
    const resume = () => body.resume();
    body.on('data', (data: Buffer) => {
      ctx.bytes += data.length;
      if (!res.write(data)) {
        body.pause();
        whenDrained(res, resume); // a client that takes nothing within the send timeout is cut off
      }
    });
    body.once('end', () => res.end());
    // An origin body cut short must reach the client cut short, never as a clean end.
    body.once('error', (error) => res.destroy(error));
    res.once('close', () => {
      if (!body.readableEnded) body.destroy();
    });
  }

  /** RFC 5861 §3: one background revalidation per key; the client already has its answer. */
  #revalidateInBackground(ctx: RequestContext, stored: Found): void {
    const edge = this.edge;
    if (edge.revalidating.has(ctx.storage) || edge.collapse.pending(ctx.storage)) return;
    edge.revalidating.add(ctx.storage);
    const settle = edge.collapse.lead(ctx.storage);
    const leading = edge.collapse.pending(ctx.storage)?.outcome;
    const background: RequestContext = { ...ctx, cacheStatus: {}, logged: true };
    let markFinished!: () => void;
    const finished = new Promise<void>((resolve) => {
      markFinished = resolve;
    });
    const requestTime = edge.now();
    const generation = edge.store.purgeGeneration(ctx.storage);
    const start = () => fetchOrigin(edge, background, { fill: true, method: 'GET', validate: stored.record });
    const claim = edge.collapse.claim(ctx.storage, false);
    const work = (
      claim === undefined ? start() : claim.then((c) => (c.kind === 'lead' ? start() : undefined))
    )
      .then(async (response) => {
        if (response === undefined) return; // another worker revalidates this key
        const responseTime = edge.now();
        if (response.status === 304) {
          discard(response.body);
          if (matchesStored(stored.record, response)) {
            await edge.store.refresh(
              stored.id,
              refreshedRecord(edge, background, stored.record, response, requestTime, responseTime),
              generation,
            );
          }
          settle({ kind: 'look-again' }); // followers find the refreshed entry
          return;
        }
        const plan = planStore(edge, background, response, requestTime, responseTime);
        if (!plan.storable || ERROR_STATUSES.has(response.status)) {
          settle(
            ERROR_STATUSES.has(response.status)
              ? { kind: 'failed', error: originFailing(response.status) }
              : { kind: 'look-again' },
          );
          discard(response.body);
          return;
        }
        const fill = new FillImpl(edge.store, edge.store.createWriter(ctx.storage), true);
        settle({
          kind: 'shared',
          fill,
          status: response.status,
          headers: sharedHeaders(plan),
          vary: plan.record.vary,
          secondaryKey: plan.record.secondaryKey,
          record: plan.record,
          tags: plan.record.tags,
          done: finished,
        });
        await this.#runFill(background, fill, response, plan.contentLength, (writer, last) =>
          writer.commit(
            plan.id,
            plan.record,
            last,
            () => edge.store.purgeGeneration(ctx.storage) === generation,
          ),
        );
      })
      .catch((error: unknown) => {
        settle({ kind: 'failed', error: error instanceof EdgeError ? error : undefined });
        edge.log.warn({ err: (error as Error).message, url: ctx.key }, 'background revalidation failed');
      })
      .finally(() => {
        edge.collapse.release(ctx.storage, leading);
        edge.revalidating.delete(ctx.storage);
        markFinished();
      });
    this.#track(work);
  }
}

/** Inside a write transaction: a complete entry is stored at `id` (full responses win over partial ones). */
function holdsFullEntry(edge: Edge, id: string): boolean {
  return edge.store.holdsFullEntryInTxn(id);
}

/** The header set a stored copy has (for followers), with the length when known. */
function sharedHeaders(plan: Extract<StorePlan, { storable: true }>): string[] {
  const headers = plan.record.headers;
  return plan.contentLength === undefined
    ? headers
    : [...headers, 'Content-Length', String(plan.contentLength)];
}

/** The error waiters are answered when the origin answers their key with a server error. */
function originFailing(status: number): EdgeError {
  return new EdgeError('EDGE_ERR_ORIGIN_FAILING', `origin answered ${status}`);
}

/** Drops an origin body nobody will read, without letting a late error escape. */
function discard(body: OriginResponse['body']): void {
  body.on('error', () => {});
  body.resume();
}
