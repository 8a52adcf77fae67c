/**
 * refresh: runs when triage found a 304 that selects the stored response being validated
 * (RFC 9111 §4.3.4): its header fields and freshness are updated; the body stays. Returns the
 * record to deliver and the insert result ('updated' or 'not-updated'; `not-storable:REASON`
 * when the updated response may not be shared, and Cache-Status's detail says why: revalidate.ts;
 * `not-storable:vary-changed` when the 304 changed the Vary the entry was selected by,
 * `not-storable:poison-suspect` when its fields reflect an unkeyed request value).
 */
import type { EntryRecord } from '../../cache/record.ts';
import { type InsertResult, notStorable, type RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import type { Leadership } from '../fill-driver.ts';
import type { Fetched, Found } from '../outcomes.ts';
import { updateReflects } from '../plan.ts';
import { refreshedRecord } from '../revalidate.ts';

export interface Refresh {
  record: EntryRecord;
  insert: InsertResult;
  /**
   * The Cache-Status members the 304 carried (a parent tier's), sent before ours with this answer
   * (RFC 9211 §2) as the fill path sends a 200's; never stored (revalidate.ts).
   */
  received: string | undefined;
}

export async function refresh(
  edge: Edge,
  ctx: RequestContext,
  stored: Found,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Refresh> {
  const { response, requestTime, responseTime } = fetched;
  const refreshed = refreshedRecord(edge, ctx, stored.record, response, requestTime, responseTime);
  const record = refreshed.record;
  const received = receivedCacheStatus(response.headers['cache-status']);
  // Not shareable once updated: this client's answer only; the entry stays as it was, unless
  // the 304 changed its Vary: then the key's variants go, and the next request asks the origin.
  if (!refreshed.shared) {
    ctx.cacheStatus.detail = refreshed.reason;
    if (refreshed.varyChanged) await edge.store.removeKeyIfHolds(stored.id, record.bodyId).catch(() => 0);
    return { record, insert: notStorable(refreshed.reason), received };
  }
  if (updateReflects(edge, ctx, response)) {
    ctx.cacheStatus.detail = 'poison-suspect';
    return { record, insert: 'not-storable:poison-suspect', received };
  }
  const ok = await edge.store.refresh(stored.id, record, generation).catch(() => false);
  return { record, insert: ok ? 'updated' : 'not-updated', received };
}

/** A received Cache-Status as one list (fields repeated are one list, RFC 9110 §5.3). */
function receivedCacheStatus(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(', ') : value;
  return joined === undefined || joined.trim() === '' ? undefined : joined;
}

/**
 * A leader's refresh: its followers no longer wait on the origin (the collapse table hears it
 * answered, so no herd collection comes between them and their answers), and they are settled
 * once the refresh is committed, so that looking again they find it fresh.
 */
export async function refreshAsLeader(
  edge: Edge,
  ctx: RequestContext,
  lead: Leadership,
  stored: Found,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Refresh> {
  edge.collapse.answered(ctx.storage, lead.leading);
  try {
    return await refresh(edge, ctx, stored, fetched, generation);
  } finally {
    lead.settle({ kind: 'look-again' });
  }
}
