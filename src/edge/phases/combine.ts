/**
 * combine: runs when triage found the origin's answer to a request for the rest of a stored
 * partial entry (RFC 9111 §3.4). A 206 of the same strong ETag touching or overlapping the
 * stored piece is stored as the union under a new body id (bodies are immutable) — as a
 * complete 200 entry once it is the whole representation; a 200 of known length (If-Range did
 * not match, or the origin ignores Range) is stored as usual. Returns:
 * - `declined`: nothing was done (another validator or length, apart from the piece, not
 *   storable, too large, short of the client's range) — the response goes the usual way;
 * - `stored`: the entry to answer the client's range from (stored, or superseded by a purge:
 *   a superseded body stays readable for its grace period), and the insert result;
 * - `failed`: nothing stored; the client is answered the error.
 */
import type { BodyWriter } from '../../cache/body-writer.ts';
import {
  combineRanges,
  coversWhole,
  rangeWithin,
  type StoredRange,
  storablePartial,
} from '../../cache/policy/partial.ts';
import { toHeaderMap } from '../../cache/policy/semantics.ts';
import type { EntryRecord } from '../../cache/record.ts';
import { EdgeError } from '../../errors.ts';
import type { OriginResponse } from '../../origin/pool.ts';
import type { InsertResult, RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { bodyIncomplete, commitGuard, commitInsert, runFill, startFill } from '../fill-driver.ts';
import type { Fetched } from '../outcomes.ts';
import type { Combinable } from '../partials.ts';
import { planStore } from '../plan.ts';

export type Combined =
  | { kind: 'declined' }
  | { kind: 'stored'; record: EntryRecord; insert: InsertResult }
  | { kind: 'failed'; error: EdgeError; insert: InsertResult };

const DECLINED: Combined = { kind: 'declined' };

export function combine(
  edge: Edge,
  ctx: RequestContext,
  partial: Combinable,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Combined> {
  return fetched.response.status === 206
    ? combinePartial(edge, ctx, partial, fetched, generation)
    : storeWhole(edge, ctx, fetched, generation);
}

/** A 200 of known length to a combining request: stored as usual, the client's range answered from it. */
async function storeWhole(
  edge: Edge,
  ctx: RequestContext,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Combined> {
  const { response, requestTime, responseTime } = fetched;
  const plan = planStore(edge, ctx, response, requestTime, responseTime);
  if (!plan.storable || plan.contentLength === undefined) return DECLINED;
  ctx.id = plan.id;
  const fill = startFill(edge, ctx.storage);
  // The client's range is answered from the stored entry: its commit does not wait for others.
  fill.commitAtOnce();
  const guard = commitGuard(edge, ctx.storage, generation, plan);
  const insert = await runFill(edge, ctx.key, fill, response, plan, guard);
  const chunks = fill.completeChunks;
  if (chunks === undefined || fill.bodyId === undefined)
    return { kind: 'failed', error: bodyIncomplete(undefined, ctx.origin), insert };
  return {
    kind: 'stored',
    record: { ...plan.record, bodyId: fill.bodyId, chunks, size: fill.received },
    insert,
  };
}

/** A 206 to a combining request: the union with the stored piece, when it combines. */
async function combinePartial(
  edge: Edge,
  ctx: RequestContext,
  partial: Combinable,
  fetched: Extract<Fetched, { kind: 'response' }>,
  generation: string,
): Promise<Combined> {
  const { response, requestTime, responseTime } = fetched;
  const headers = toHeaderMap(response.headers);
  if (headers.etag !== partial.record.etag) return DECLINED;
  const piece = storablePartial(headers);
  if (piece === undefined) return DECLINED;
  const union = combineRanges(partial.piece, piece);
  if (union === undefined) return DECLINED;
  const size = union.end - union.start + 1;
  if (size > edge.config.cache.maxObjectSize) return DECLINED;
  const whole = coversWhole(union);
  if (!whole && rangeWithin(ctx.req.headers.range, union) === undefined) return DECLINED;
  const plan = planStore(edge, ctx, response, requestTime, responseTime);
  if (!plan.storable || plan.id !== partial.id) return DECLINED;
  const { range: _piece, ...fields } = plan.record;
  const record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> = whole
    ? { ...fields, status: 200 }
    : { ...fields, status: 206, range: union };
  ctx.id = plan.id;
  return writeCombined(edge, ctx, partial, piece, response, { id: plan.id, record }, size, generation);
}

async function writeCombined(
  edge: Edge,
  ctx: RequestContext,
  partial: Combinable,
  piece: StoredRange,
  response: OriginResponse,
  plan: { id: string; record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> },
  size: number,
  generation: string,
): Promise<Combined> {
  const writer = edge.store.createWriter(ctx.storage);
  // The client's range is answered from the stored union: its commit does not wait for others.
  writer.commitAtOnce();
  const out = new Rechunker(writer, edge.config.cache.chunkSize);
  const ok = await writeUnion(edge, out, partial, piece, response.body).catch(() => false);
  if (!ok || out.size !== size) {
    writer.abort();
    if (!response.body.destroyed) response.body.destroy();
    if (writer.failed) return { kind: 'failed', error: writeFailed(), insert: 'aborted-store-failed' };
    edge.log.warn({ url: ctx.key, origin: ctx.origin }, 'origin range response incomplete; not combined');
    return { kind: 'failed', error: bodyIncomplete(undefined, ctx.origin), insert: 'aborted-incomplete' };
  }
  // Only onto the piece it was combined with: anything stored since wins.
  const guard = commitGuard(edge, ctx.storage, generation, plan, partial.record.bodyId);
  const insert = await commitInsert(writer, plan, out.rest(), guard);
  if (insert === 'aborted-store-failed') return { kind: 'failed', error: writeFailed(), insert };
  return {
    kind: 'stored',
    record: { ...plan.record, bodyId: writer.bodyId, chunks: writer.chunks, size },
    insert,
  };
}

function writeFailed(): EdgeError {
  return new EdgeError('EDGE_ERR_STORE_WRITE', 'cache write failed');
}

/**
 * Writes the union in order: the new bytes before the stored piece, the stored piece, then the
 * new bytes past it (the overlap is taken from the stored piece). False when the stored body
 * cannot be read or the origin body is not the piece it announced.
 */
async function writeUnion(
  edge: Edge,
  out: Rechunker,
  partial: Combinable,
  piece: StoredRange,
  body: OriginResponse['body'],
): Promise<boolean> {
  const stored = partial.piece;
  let position = piece.start;
  let storedWritten = false;
  const writeStored = async (): Promise<boolean> => {
    storedWritten = true;
    const small = edge.store.smallBody(partial.record);
    if (small !== undefined) {
      await out.push(small);
      return true;
    }
    for (let i = 0; i < partial.record.chunks; i++) {
      const chunk = edge.store.chunk(partial.record.bodyId, i);
      if (chunk === undefined) return false;
      await out.push(chunk);
    }
    return true;
  };
  for await (const data of body as AsyncIterable<Buffer>) {
    let rest = data;
    if (position < stored.start) {
      const take = Math.min(rest.length, stored.start - position);
      await out.push(rest.subarray(0, take));
      position += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0) continue;
    if (!storedWritten && !(await writeStored())) return false;
    if (position <= stored.end) {
      const skip = Math.min(rest.length, stored.end + 1 - position);
      position += skip;
      rest = rest.subarray(skip);
    }
    if (rest.length > 0) {
      await out.push(rest);
      position += rest.length;
    }
  }
  if (position !== piece.end + 1) return false;
  if (!storedWritten && !(await writeStored())) return false;
  return true;
}

/** Cuts a stream of buffers into chunkSize chunks for a body writer (all but the last full). */
class Rechunker {
  size = 0;
  readonly #writer: BodyWriter;
  readonly #chunkSize: number;
  #pending: Buffer[] = [];
  #pendingLength = 0;

  constructor(writer: BodyWriter, chunkSize: number) {
    this.#writer = writer;
    this.#chunkSize = chunkSize;
  }

  async push(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.size += data.length;
    this.#pending.push(data);
    this.#pendingLength += data.length;
    while (this.#pendingLength >= this.#chunkSize) {
      const joined = Buffer.concat(this.#pending, this.#pendingLength);
      const chunk = joined.subarray(0, this.#chunkSize);
      const left = joined.subarray(this.#chunkSize);
      this.#pending = left.length > 0 ? [left] : [];
      this.#pendingLength = left.length;
      await this.#writer.write(Buffer.from(chunk));
      if (this.#writer.failed) throw new Error('cache write failed');
    }
  }

  /** The last (short) chunk. */
  rest(): Buffer {
    return Buffer.concat(this.#pending, this.#pendingLength);
  }
}
