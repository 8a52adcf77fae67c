/**
 * The request pipeline (docs/architecture.md has the chart). A fresh hit runs synchronously
 * from receive to the first byte written: receive → rules → hash → lookup → deliver → log. The miss
 * path is a short story of steps under phases/, each returning what happens next:
 * gate → collapse → fetch → triage → (refresh | combine | insert | relay) → fail.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgeError } from '../errors.ts';
import { revalidateInBackground } from './background.ts';
import { keyScheme } from './client.ts';
import { answered, hold, release, whenClosed } from './completion.ts';
import { createContext, notStorable, type RequestContext } from './context.ts';
import { answerRefreshed } from './derive.ts';
import type { Edge } from './edge.ts';
import { discard, fromSibling, type Leadership, originFailing, track, uncacheable } from './fill-driver.ts';
import { answerFollower } from './follower.ts';
import { invalidateAfterHead, invalidateAfterUnsafe } from './invalidate.ts';
import type { Found, LookupOutcome } from './outcomes.ts';
import { collapse } from './phases/collapse.ts';
import { combine } from './phases/combine.ts';
import { deliverStored } from './phases/deliver.ts';
import { fail } from './phases/fail.ts';
import { cameBack, type Fetched, fetchStep } from './phases/fetch.ts';
import { type Fwd, type Gate, gate } from './phases/gate.ts';
import { admitToOrigin, guard } from './phases/guard.ts';
import { hash } from './phases/hash.ts';
import { insert } from './phases/insert.ts';
import { lookup } from './phases/lookup.ts';
import { receive } from './phases/receive.ts';
import { refreshAsLeader } from './phases/refresh.ts';
import { relay } from './phases/relay.ts';
import { rules } from './phases/rules.ts';
import { triage } from './phases/triage.ts';
import { sendError } from './respond.ts';
import { noteSecurity } from './security-note.ts';
import { serveStale } from './serve-stale.ts';

type Forward = Extract<Gate, { kind: 'forward' }>;

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
    if (!receive(edge, ctx) || !guard(edge, ctx) || !rules(ctx)) return whenClosed(edge, ctx);
    // RFC 9110 §10.1.1: 100 Continue held back until site, security checks and rules accepted it.
    if (ctx.expectsContinue) ctx.res.writeContinue();
    hash(ctx, keyScheme(edge, ctx));
    this.#route(ctx, 1);
  };

  #route(ctx: RequestContext, attempt: number): void {
    const edge = this.edge;
    const found = lookup(edge, ctx);
    if (found.kind === 'found') {
      ctx.id = found.id;
      const reuse = found.reuse.kind;
      if (reuse === 'fresh' || reuse === 'stale-allowed' || reuse === 'stale-while-revalidate') {
        ctx.lookup =
          reuse === 'fresh' ? 'hit' : reuse === 'stale-allowed' ? 'stale' : 'stale-while-revalidate';
        ctx.cacheStatus.hit = true;
        // A hit answered at once is logged at once: no listener, no later event.
        if (deliverStored(edge, ctx, found.record)) answered(edge, ctx);
        else whenClosed(edge, ctx);
        if (reuse === 'stale-while-revalidate') this.#revalidate(ctx, found);
        return;
      }
    }
    whenClosed(edge, ctx);
    fromSibling(edge, ctx, found, (stale) => this.#miss(ctx, stale ?? found, attempt));
  }

  #miss(ctx: RequestContext, found: LookupOutcome, attempt: number): void {
    const step = gate(this.edge, ctx, found, cameBack(this.edge, ctx));
    if (step.kind === 'refuse') return sendError(this.edge, ctx, step.error, false);
    const work =
      step.kind === 'pass' ? this.#pass(ctx, step.fwd, step.detail) : this.#forward(ctx, step, attempt);
    track(this.edge, work, (error) => this.#crashed(ctx, error));
  }

  #crashed(ctx: RequestContext, error: unknown): void {
    this.edge.log.error({ err: error, url: ctx.key }, 'request failed inside the node');
    sendError(this.edge, ctx, new EdgeError('EDGE_ERR_INTERNAL', 'internal error', { cause: error }), true);
  }

  async #forward(ctx: RequestContext, forward: Forward, attempt: number): Promise<void> {
    const edge = this.edge;
    ctx.cacheStatus.fwd = forward.partial ? 'partial' : forward.fwd;
    const decided = collapse(edge, ctx, forward.collapsible, attempt, () => admitToOrigin(edge, ctx));
    const step = decided instanceof Promise ? await decided : decided; // no tick when decided at once
    if (step.kind === 'gone' || step.kind === 'refused') return;
    // Once more (a leader's entry was committed): nothing of this try is reported.
    if (step.kind === 'again') return this.#route(Object.assign(ctx, { cacheStatus: {} }), attempt + 1);
    if (step.kind === 'pass') return this.#pass(ctx, forward.fwd, step.detail);
    if (step.kind === 'fail') return this.#fail(ctx, forward.stored, step.error, false);
    if (step.kind === 'join') return answerFollower(edge, ctx, step, () => this.#route(ctx, attempt + 1));
    // Taken before the origin is asked: a purge from here on voids what this fetch brings.
    const generation = edge.store.purgeGeneration(ctx.storage);
    const { stored, ranged, partial } = forward;
    const options = { fill: true, method: 'GET', validate: stored?.record, range: ranged, combine: partial };
    const fetched = await fetchStep(edge, ctx, options);
    if (fetched.kind === 'failed') {
      step.lead.settle({ kind: 'failed', error: fetched.error });
      return this.#fail(ctx, stored, fetched.error, true);
    }
    return this.#triage(ctx, forward, step.lead, fetched, generation, partial !== undefined);
  }

  async #triage(
    ctx: RequestContext,
    forward: Forward,
    lead: Leadership,
    fetched: Extract<Fetched, { kind: 'response' }>,
    generation: string,
    combining: boolean,
  ): Promise<void> {
    const edge = this.edge;
    const response = fetched.response;
    const step = triage(edge, ctx, forward.stored, fetched, combining ? forward.partial : undefined, false);
    if (step.kind !== 'insert' && step.kind !== 'relay' && step.kind !== 'combine') discard(response.body);
    if (step.kind === 'stale-on-error') {
      lead.settle({ kind: 'failed', error: originFailing(response.status) });
      return serveStale(this.edge, ctx, forward.stored!, `origin answered ${response.status}`);
    }
    if (step.kind === 'refresh') {
      ctx.lookup = 'revalidated';
      const refreshed = await refreshAsLeader(edge, ctx, lead, step.stored, fetched, generation);
      ctx.insert = refreshed.insert;
      return answerRefreshed(edge, ctx, step.stored, refreshed);
    }
    if (step.kind === 'refetch') {
      const again = await fetchStep(edge, ctx, { fill: true, method: 'GET', range: forward.ranged });
      if (again.kind === 'response')
        return this.#triage(ctx, { ...forward, stored: undefined }, lead, again, generation, false);
      lead.settle({ kind: 'failed', error: again.error });
      return this.#fail(ctx, forward.stored, again.error, true);
    }
    if (step.kind === 'relay') {
      // A failing origin is no uncacheable key: followers elect again (bounded), no hit-for-pass.
      lead.settle(
        step.failing
          ? { kind: 'failed', error: originFailing(response.status) }
          : uncacheable(response.status),
      );
      ctx.insert = notStorable(step.reason);
      ctx.cacheStatus.detail = step.reason;
      return void relay(edge, ctx, response, true);
    }
    hold(ctx);
    try {
      if (step.kind === 'insert') {
        ctx.insert = (await insert(edge, ctx, step.plan, fetched, generation, lead)).insert;
        if (ctx.insert === 'not-storable:poison-suspect')
          noteSecurity(edge, ctx, 'poison-suspect', 'not-stored');
        return;
      }
      const combined = await combine(edge, ctx, step.partial, fetched, generation);
      if (combined.kind === 'declined')
        return await this.#triage(ctx, forward, lead, fetched, generation, false);
      ctx.insert = combined.insert;
      if (combined.kind === 'failed') return sendError(edge, ctx, combined.error, false);
      ctx.cacheStatus.stored = combined.insert === 'stored';
      deliverStored(edge, ctx, combined.record);
    } finally {
      release(edge, ctx);
    }
  }

  /** Sends the request to the origin and relays the answer unstored. */
  async #pass(ctx: RequestContext, fwd: Fwd, detail?: string): Promise<void> {
    ctx.lookup =
      fwd === 'method' ? 'pass' : fwd === 'bypass' ? 'bypass' : ctx.lookup === 'miss' ? 'miss' : 'pass';
    ctx.cacheStatus.fwd = fwd;
    if (detail) ctx.cacheStatus.detail = detail;
    if (!admitToOrigin(this.edge, ctx)) return;
    const fetched = await fetchStep(this.edge, ctx, { fill: false });
    if (fetched.kind === 'failed') return this.#fail(ctx, undefined, fetched.error, true);
    if (fwd === 'method') await invalidateAfterUnsafe(this.edge, ctx, fetched.response);
    else if (ctx.method === 'HEAD') await invalidateAfterHead(this.edge, ctx, fetched.response);
    relay(this.edge, ctx, fetched.response);
  }

  #fail(ctx: RequestContext, stored: Found | undefined, error: EdgeError, fetched: boolean): void {
    const failure = fail(this.edge, ctx, stored, error, fetched);
    if (failure.kind === 'stale') return serveStale(this.edge, ctx, failure.stored, failure.why);
    sendError(this.edge, ctx, failure.error, failure.kind === 'client');
  }

  #revalidate(ctx: RequestContext, stored: Found): void {
    const work = revalidateInBackground(this.edge, ctx, stored);
    if (work !== undefined) track(this.edge, work);
  }
}
