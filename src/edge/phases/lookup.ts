/**
 * lookup: synchronous LMDB read of the variant matching the request, and the reuse
 * verdict against the record's precomputed deadlines. No await, no allocation beyond
 * the decoded record on the common path.
 */

import type { Directives } from '../../cache/policy/cache-control.ts';
import { decideReuse, type Reuse, requestDirectives } from '../../cache/policy/reuse.ts';
import type { EntryRecord } from '../../cache/record.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';

export type LookupOutcome =
  | { kind: 'uncacheable-method' }
  | { kind: 'miss'; reason: 'miss' | 'vary-miss' }
  | { kind: 'found'; id: string; record: EntryRecord; reuse: Reuse; directives: Directives | undefined };

const UNCACHEABLE_METHOD: LookupOutcome = { kind: 'uncacheable-method' };
const MISS: LookupOutcome = { kind: 'miss', reason: 'miss' };
const VARY_MISS: LookupOutcome = { kind: 'miss', reason: 'vary-miss' };

export function lookup(edge: Edge, ctx: RequestContext): LookupOutcome {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return UNCACHEABLE_METHOD;
  const found = edge.store.lookup(ctx.storage, ctx.req.headers);
  if (found.kind === 'miss') return MISS;
  if (found.kind === 'vary-miss') return VARY_MISS;
  const record = found.record;
  // RFC 9111 §3.5: with Authorization, only responses that allowed it may be reused.
  if (ctx.req.headers.authorization !== undefined && !record.authOk) return MISS;
  const headers = ctx.req.headers;
  const directives = requestDirectives(headers['cache-control'], headers.pragma as string | undefined);
  const reuse = decideReuse(record, directives, ctx.now);
  return { kind: 'found', id: found.id, record, reuse, directives };
}
