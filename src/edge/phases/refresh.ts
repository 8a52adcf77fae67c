/**
 * refresh: runs when triage found a 304 for the stored response being validated. RFC 9111
 * §4.3.4: the stored response is updated (header fields, freshness) only when the 304's
 * validators select it; the body stays. Returns the record to deliver, and the insert result
 * when an update was attempted ('updated' or 'not-updated'; `not-storable:REASON` when the
 * updated response may not be shared, and Cache-Status's detail says why: revalidate.ts).
 */
import type { EntryRecord } from '../../cache/record.ts';
import type { InsertResult, RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { Fetched, Found } from '../outcomes.ts';
import { matchesStored, refreshedRecord } from '../revalidate.ts';

export type Refresh =
  | { kind: 'refreshed'; record: EntryRecord; insert: InsertResult }
  | { kind: 'kept'; record: EntryRecord };

export async function refresh(
  edge: Edge,
  ctx: RequestContext,
  stored: Found,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Refresh> {
  const { response, requestTime, responseTime } = fetched;
  if (!matchesStored(stored.record, response)) return { kind: 'kept', record: stored.record };
  const refreshed = refreshedRecord(edge, ctx, stored.record, response, requestTime, responseTime);
  const record = refreshed.record;
  // Not shareable once updated: this client's answer only; the entry stays as it was.
  if (!refreshed.shared) {
    ctx.cacheStatus.detail = refreshed.reason;
    return { kind: 'refreshed', record, insert: `not-storable:${refreshed.reason}` };
  }
  const ok = await edge.store.refresh(stored.id, record, generation).catch(() => false);
  return { kind: 'refreshed', record, insert: ok ? 'updated' : 'not-updated' };
}
