/**
 * lookup: synchronous LMDB read of the variant matching the request, and the reuse
 * verdict against the record's precomputed deadlines. No await, no allocation beyond
 * the decoded record on the common path. Runs after hash, and again when collapse says
 * to look again. Returns found (with the reuse verdict), miss, or uncacheable-method.
 */

import { rangeWithin } from '../../cache/policy/partial.ts';
import { decideReuse, type Reuse } from '../../cache/policy/reuse.ts';
import type { EntryRecord } from '../../cache/record.ts';
import { identityOnly } from '../compression.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { LookupOutcome } from '../outcomes.ts';
import { clientDirectives } from '../rule-effects.ts';

export type { LookupOutcome };

const UNCACHEABLE_METHOD: LookupOutcome = { kind: 'uncacheable-method' };
const MISS: LookupOutcome = { kind: 'miss', reason: 'miss' };
const VARY_MISS: LookupOutcome = { kind: 'miss', reason: 'vary-miss' };
const BYPASS: LookupOutcome = { kind: 'miss', reason: 'bypass' };

export function lookup(edge: Edge, ctx: RequestContext): LookupOutcome {
  const rules = ctx.rules;
  if (rules !== undefined) ctx.cacheStatus.rule = rules.name;
  if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || ctx.passReason !== undefined)
    return UNCACHEABLE_METHOD;
  // A bypass (nginx proxy_cache_bypass) is never answered from the cache; its response is stored.
  // So is a request of a child tier that applied a purge this node has not (docs/tiers.md).
  if (rules?.action === 'bypass' || ctx.fence !== undefined) return BYPASS;
  let found = edge.store.lookup(ctx.storage, ctx.req.headers);
  if (found.kind === 'miss') return MISS;
  if (found.kind === 'vary-miss') {
    // An identity variant no coding is made of answers every bucket as it is (compression.ts).
    const identity = identityOnly(edge, ctx, found.fields);
    if (identity === undefined) return VARY_MISS;
    found = { kind: 'found', ...identity };
  }
  const record = found.record;
  // RFC 9111 §3.5: with Authorization, only responses that allowed it may be reused.
  if (ctx.req.headers.authorization !== undefined && !record.authOk) return MISS;
  const directives = clientDirectives(ctx);
  const reuse = decideReuse(record, directives, ctx.now);
  if (record.range !== undefined && !partialAnswers(ctx, record, reuse)) return MISS;
  return { kind: 'found', id: found.id, record, reuse, directives };
}

/**
 * RFC 9111 §3.3: a partial entry answers only a plain GET whose single Range lies wholly
 * inside it, while it may be reused as it is. Anything else is a miss: the response fetched
 * for it (a full one is preferred) replaces the partial entry.
 */
function partialAnswers(ctx: RequestContext, record: EntryRecord, reuse: Reuse): boolean {
  const headers = ctx.req.headers;
  if (ctx.method !== 'GET' || reuse.kind === 'revalidate' || reuse.kind === 'stale-while-revalidate')
    return false;
  if (headers['if-range'] !== undefined || headers['if-none-match'] !== undefined) return false;
  if (headers['if-modified-since'] !== undefined) return false;
  return rangeWithin(headers.range, record.range!) !== undefined;
}
