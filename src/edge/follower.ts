/**
 * A collapsed follower's answer. A small body of known length (at most WHOLE_MAX) is answered
 * whole once it has all arrived: the head from the text rendered once for the fill's header
 * list (http/prepared-head.ts, as a hit's), this follower's Age, Cache-Status and X-Request-Id,
 * and the body, in one write — a herd of hundreds of followers costs one rendering, not one
 * writeHead, one reader and three writes each — FOLLOWERS_PER_TURN of them per turn of the
 * event loop. Anything else reads the fill as it arrives (readFill). Not a phase: the pipeline
 * calls it for a `join`.
 */
import type { LeaderOutcome } from '../cache/collapse.ts';
import type { Fill } from '../cache/fill.ts';
import { currentAge, type StoredFreshness } from '../cache/policy/reuse.ts';
import { endPrepared } from '../http/prepared-head.ts';
import { formatCacheStatus } from '../observability/cache-status.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { bodyIncomplete, readFill } from './fill-driver.ts';
import { sendError } from './respond.ts';
import { sharedForClient } from './rule-effects.ts';
import { clientVisible, tierAge } from './tier.ts';

type Shared = Extract<LeaderOutcome, { kind: 'shared' }>;

/** Largest body a follower waits for whole rather than reading as it arrives. */
export const WHOLE_MAX = 64 * 1024;

/** Each finished fill's body, made once for all its followers. */
const bodies = new WeakMap<Fill, Buffer | null>();

/**
 * Answers a follower that joined `outcome`'s fill; `again`: asks again when the worker writing
 * it exits before this client was sent anything (readFill: another worker's fill has no `whole`).
 */
export function answerFollower(
  edge: Edge,
  ctx: RequestContext,
  { outcome }: { outcome: Shared },
  again?: () => void,
): void {
  const whole = outcome.whole;
  const fill = outcome.fill;
  if (
    whole === undefined ||
    whole.length > WHOLE_MAX ||
    whole.length >= fill.chunkSize ||
    ctx.method !== 'GET' ||
    outcome.status === 204 ||
    outcome.status === 304
  ) {
    return readFill(edge, ctx, fill, outcome.status, outcome.headers, {
      age: followerAge(edge, ctx, outcome.record),
      again,
    });
  }
  const res = ctx.res;
  const answer = (): void => {
    if (res.destroyed) return;
    const body = fill.state === 'done' ? bodyOf(fill, whole.length) : undefined;
    // The body cannot be completed, and nothing of it was sent: an answer the client can read.
    if (body === undefined) return sendError(edge, ctx, bodyIncomplete(fill.error, ctx.origin), false);
    writeWhole(edge, ctx, outcome.status, whole.headers, body, followerAge(edge, ctx, outcome.record));
  };
  if (fill.state === 'streaming') whenEnded(fill, answer);
  else answer();
}

/**
 * RFC 9111 §4.2.3, §5.1: the Age of the response being stored, as a hit of it would send now
 * (deliver.ts). The stored header list has no Age (plan.ts recomputes it on delivery): without
 * this, a follower of a response 30 s old at the origin went out with none, fresher than it is.
 */
function followerAge(edge: Edge, ctx: RequestContext, record: StoredFreshness): number {
  const age = tierAge(ctx, record, currentAge(record, edge.now()));
  ctx.age = age;
  return age;
}

/**
 * Followers answered per turn of the event loop once their fill ended. Between turns the
 * loop finishes the responses already written (write callbacks, the connection closed after
 * a `Connection: close` answer): the first followers are done while the later ones are
 * written, instead of all of them waiting for the last.
 */
export const FOLLOWERS_PER_TURN = 16;

/** The followers waiting for each streaming fill's end, in arrival order. */
const waiting = new WeakMap<Fill, Array<() => void>>();

/** Runs `answer` once `fill` has ended (done or failed): one progress listener per fill. */
function whenEnded(fill: Fill, answer: () => void): void {
  let queue = waiting.get(fill);
  if (queue === undefined) {
    const answers: Array<() => void> = [];
    const check = (): void => {
      if (fill.state === 'streaming') return fill.onProgress(check);
      waiting.delete(fill);
      answerFrom(answers, 0);
    };
    fill.onProgress(check);
    waiting.set(fill, answers);
    queue = answers;
  }
  queue.push(answer);
}

function answerFrom(answers: Array<() => void>, from: number): void {
  const end = Math.min(answers.length, from + FOLLOWERS_PER_TURN);
  for (let i = from; i < end; i++) answers[i]!();
  if (end < answers.length) setImmediate(answerFrom, answers, end);
}

/** The fill's whole body when it has exactly `length` bytes, else undefined. */
function bodyOf(fill: Fill, length: number): Buffer | undefined {
  let body = bodies.get(fill);
  if (body === undefined) {
    const made = fill.received === length ? fill.wholeBody() : undefined;
    body = made?.length === length ? made : null;
    bodies.set(fill, body);
  }
  return body ?? undefined;
}

function writeWhole(
  edge: Edge,
  ctx: RequestContext,
  status: number,
  stored: readonly string[],
  body: Buffer,
  age: number,
) {
  const res = ctx.res;
  // The same client view of the list as a hit's: one array per fill, rendered once.
  const list = sharedForClient(clientVisible(edge, ctx, stored), ctx.rules);
  const cacheStatus = formatCacheStatus(edge.name, ctx.cacheStatus);
  ctx.bytes += body.length;
  const extra = ['Age', String(age), 'Cache-Status', cacheStatus, 'X-Request-Id', ctx.requestId];
  if (ctx.hsts !== undefined) extra.push('Strict-Transport-Security', ctx.hsts);
  // A stored header list never holds Cache-Status (plan.ts drops it on store): ours is the one.
  if (ctx.protocol !== '2' && endPrepared(res, status, list, extra, body)) return;
  const headers = list.slice();
  headers.push(...extra, 'Content-Length', String(body.length));
  res.writeHead(status, headers);
  res.end(body);
}
