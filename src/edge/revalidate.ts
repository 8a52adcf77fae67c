/**
 * After a 304: the stored entry's header fields are updated from the 304 and its
 * freshness recomputed (RFC 9111 §4.3.4, §3.2), keeping the same body.
 */

import { withoutIgnored } from '../cache/policy/overrides.ts';
import { type HeaderMap, toHeaderMap } from '../cache/policy/semantics.ts';
import { selectedForUpdate } from '../cache/policy/update.ts';
import { parseVary } from '../cache/policy/vary.ts';
import type { EntryRecord } from '../cache/record.ts';
import { endToEndResponseHeaders } from '../http/headers.ts';
import type { OriginResponse } from '../origin/pool.ts';
import { contentCoded, mergeVary, withAcceptEncoding } from './compression.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { freshnessFields } from './freshness.ts';
import { extractTags, updatedStorable } from './plan.ts';
import { strippedOnStore } from './rule-effects.ts';
import { hasTierFields } from './tier.ts';

/** §3.2: fields a 304 must not change in the stored response. */
const KEEP_STORED: ReadonlySet<string> = new Set([
  // the stored response's content does not change, so neither do fields describing it
  'content-md5',
  'digest',
  'content-digest',
  'repr-digest',
  'content-length',
  'content-encoding',
  'content-range',
  'age',
]);

/** Whether a 304 may update this stored response (RFC 9111 §4.3.4: validators must agree). */
export function matchesStored(record: EntryRecord, response: OriginResponse): boolean {
  const { etag, 'last-modified': lastModified } = response.headers;
  // A coding the node made is selected by the origin's tag it stands for.
  const stored = { etag: record.originEtag ?? record.etag, lastModified: record.lastModified };
  return selectedForUpdate(stored, {
    etag: typeof etag === 'string' ? etag : undefined,
    lastModified: typeof lastModified === 'string' ? lastModified : undefined,
  });
}

/**
 * The stored response updated by a 304, and whether it may still be shared: when it may not
 * (the 304 brought Set-Cookie, private ...), the update answers the client that revalidated and
 * is not stored, so the entry stays as it was and its next reuse asks again. When the 304's
 * Vary names other fields than the entry was stored under (Vary: * included), the entry is not
 * kept either (`varyChanged`): selected by the old fields, it would answer requests the origin
 * now tells apart (§4.1), so the key's variants are removed (refresh.ts). Fields the 304 names
 * in private="…" or no-cache="…" are not kept. Tags follow the updated tag fields.
 */
export type Refreshed =
  | { shared: true; record: EntryRecord }
  | { shared: false; record: EntryRecord; reason: string; varyChanged: boolean };

export function refreshedRecord(
  edge: Edge,
  ctx: RequestContext,
  record: EntryRecord,
  response: OriginResponse,
  requestTime: number,
  responseTime: number,
): Refreshed {
  const drop = new Set([...KEEP_STORED, ...edge.stripStored, 'cache-status', ...strippedOnStore(ctx)]);
  const vary = withoutIgnored(toHeaderMap(response.headers), ctx.rules?.overrides).vary;
  const changed = varyChanged(record, vary);
  // A coding the node made keeps its own suffixed tag (a 304 carries the origin's), and a
  // compressible entry keeps the Vary it was stored with (Accept-Encoding merged in), unless
  // the 304 changes it: the client that revalidated is then told the new one.
  if (record.originEtag !== undefined) drop.add('etag');
  if (!changed && (record.originEtag !== undefined || record.compressible === true)) drop.add('vary');
  const updates = endToEndResponseHeaders(response.headers, drop);
  const replaced = new Set<string>();
  for (let i = 0; i < updates.length; i += 2) replaced.add(updates[i]!.toLowerCase());
  const merged: string[] = [];
  for (let i = 0; i < record.headers.length; i += 2) {
    const name = record.headers[i]!;
    if (!replaced.has(name.toLowerCase())) merged.push(name, record.headers[i + 1]!);
  }
  for (const field of updates) merged.push(field);
  if (changed && parseVary(vary) !== '*' && varyEncoding(record)) mergeVary(merged);
  const map: Record<string, string[]> = {};
  for (let i = 0; i < merged.length; i += 2) {
    const name = merged[i]!.toLowerCase();
    map[name] = [...(map[name] ?? []), merged[i + 1]!];
  }
  // Targeted fields meant for us alone are never stored or delivered, but a 304 carrying
  // them sets the refreshed freshness as the 200 did (RFC 9213 §2.1, W3C Edge Architecture).
  for (const name of edge.stripResponse) {
    const value = response.headers[name];
    if (value !== undefined) map[name] = Array.isArray(value) ? value : [value];
  }
  const headers = toHeaderMap(map);
  // The 304's Age counts in the refreshed response's age (§4.3.4, §4.2.3): a parent cache that
  // answered from a copy 50 s old leaves ours 50 s old, not new. Read here, never stored.
  const age = response.headers.age;
  if (age !== undefined) headers.age = Array.isArray(age) ? age.join(', ') : age;
  // A Vary: * is never dropped above (it always changes the fields): nothing varying on
  // everything is shared.
  const verdict = updatedStorable(edge, ctx, record.status, headers);
  const kept = verdict.storable ? withoutFields(merged, verdict.stripFields) : merged;
  const { tierFields: _was, ...rest } = record;
  const updated: EntryRecord = {
    ...rest,
    ...(hasTierFields(edge, kept) ? { tierFields: true as const } : {}),
    headers: kept,
    tags: updatedTags(edge, record, response, headers),
    storedAt: responseTime,
    ...freshnessFields(edge, ctx, record.status, headers, requestTime, responseTime),
  };
  if (verdict.storable && !changed) return { shared: true, record: updated };
  const reason = verdict.storable ? 'vary-changed' : verdict.reason;
  return { shared: false, record: updated, reason, varyChanged: changed };
}

/**
 * Whether a 304's Vary (`value`, after the site's ignored fields) selects by other fields than
 * the entry was stored under (§4.1; §4.3.4: a field the 304 leaves out stays as stored, so no
 * Vary changes nothing). Compared as plan.ts variantOf made them: names sorted, Accept-Encoding
 * added for a coded or compressible entry.
 */
function varyChanged(record: EntryRecord, value: string | undefined): boolean {
  if (value === undefined) return false;
  const vary = parseVary(value);
  if (vary === '*') return true;
  const fields = varyEncoding(record) ? withAcceptEncoding(vary) : vary;
  return fields.join() !== record.vary.join();
}

/** Whether the entry varies on Accept-Encoding whatever the origin's Vary says (plan.ts variantOf). */
function varyEncoding(record: EntryRecord): boolean {
  return (
    record.compressible === true || record.originEtag !== undefined || contentCoded(record.contentEncoding)
  );
}

/**
 * The tags of the updated response: read again from the updated fields when the 304 carries a
 * tag field (its value replaces the stored one, §4.3.4), so a purge by the new tag reaches the
 * entry and one by a tag it no longer carries does not. Without one they stay as stored (a tag
 * field the node hides is not among the stored fields to read them from).
 */
function updatedTags(
  edge: Edge,
  record: EntryRecord,
  response: OriginResponse,
  headers: HeaderMap,
): string[] {
  if (!edge.tagHeaders.some((name) => response.headers[name] !== undefined)) return record.tags;
  const tags = extractTags(edge, headers);
  // A tag field the node does not store (proxy.hideResponseHeaders) and the 304 left out still
  // tags the entry as the 200 did: its tags are unknown here, so the stored ones stay beside.
  const unread = edge.tagHeaders.some((name) => headers[name] === undefined && edge.stripStored.has(name));
  return unread ? [...new Set([...record.tags, ...tags])] : tags;
}

/** A flat field list without the named fields (lower-case names). */
function withoutFields(fields: string[], names: readonly string[]): string[] {
  if (names.length === 0) return fields;
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    if (!names.includes(fields[i]!.toLowerCase())) out.push(fields[i]!, fields[i + 1]!);
  }
  return out;
}
