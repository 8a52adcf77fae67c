/**
 * combine (RFC 9111 §3.4): a Range request reaching past a stored partial entry that has a
 * strong ETag asks the origin only for the missing bytes, with `If-Range: <etag>`. A 206 of the
 * same strong ETag touching or overlapping the stored piece is stored as the union under a new
 * body id (bodies are immutable) — as a complete 200 entry once it is the whole representation —
 * and the client's range is answered from it.
 */
import type { BodyWriter } from '../../cache/body-writer.ts';
import {
  combineRanges,
  coversWhole,
  isStrongEtag,
  missingSpan,
  rangeWithin,
  type StoredRange,
  spanHeader,
  storablePartial,
} from '../../cache/policy/partial.ts';
import { toHeaderMap } from '../../cache/policy/semantics.ts';
import type { EntryRecord } from '../../cache/record.ts';
import { EdgeError } from '../../errors.ts';
import type { OriginResponse } from '../../origin/pool.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { deliverStored } from './deliver.ts';
import { sendError } from './respond.ts';
import { planStore } from './store.ts';

/** A stored partial entry a Range miss may complete, and what to ask the origin for. */
export interface Combinable {
  id: string;
  record: EntryRecord;
  piece: StoredRange;
  /** Range and If-Range field values for the origin request. */
  range: string;
  ifRange: string;
}

/**
 * The partial entry a Range request may be completed from: a plain GET (no conditionals) whose
 * single range reaches past a stored piece with a strong ETag, touching or overlapping it.
 * Only the ETag is used as the validator: a Last-Modified date is strong only under the
 * conditions of RFC 9110 §8.8.2.2, which a cache cannot check for a stored piece.
 */
export function combinable(edge: Edge, ctx: RequestContext): Combinable | undefined {
  const headers = ctx.req.headers;
  if (ctx.method !== 'GET' || headers.range === undefined) return undefined;
  if (
    headers['if-range'] !== undefined ||
    headers['if-none-match'] !== undefined ||
    headers['if-modified-since'] !== undefined ||
    headers['if-match'] !== undefined ||
    headers['if-unmodified-since'] !== undefined
  )
    return undefined;
  const found = edge.store.lookup(ctx.storage, headers);
  if (found.kind !== 'found') return undefined;
  const record = found.record;
  const piece = record.range;
  if (piece === undefined || !isStrongEtag(record.etag) || record.invalidated) return undefined;
  if (headers.authorization !== undefined && !record.authOk) return undefined;
  // Freshness does not matter: a 206 carrying the same strong ETag validates the stored piece.
  const span = missingSpan(headers.range, piece);
  if (span === undefined) return undefined;
  return { id: found.id, record, piece, range: spanHeader(span), ifRange: record.etag };
}

/**
 * Handles the origin's 206 to a combining request. Returns false, having touched nothing, when
 * it does not combine (another validator, another representation length, apart from the piece,
 * not storable, too large, short of the client's range): the caller then stores and relays it
 * as any 206. Otherwise the union is written and committed, and the client's range answered.
 */
export async function combinePartial(
  edge: Edge,
  ctx: RequestContext,
  partial: Combinable,
  response: OriginResponse,
  requestTime: number,
  responseTime: number,
  generation: string,
): Promise<boolean> {
  if (response.status !== 206) return false;
  const headers = toHeaderMap(response.headers);
  if (headers.etag !== partial.record.etag) return false;
  const piece = storablePartial(headers);
  if (piece === undefined) return false;
  const union = combineRanges(partial.piece, piece);
  if (union === undefined) return false;
  const size = union.end - union.start + 1;
  if (size > edge.config.cache.maxObjectSize) return false;
  const whole = coversWhole(union);
  if (!whole && rangeWithin(ctx.req.headers.range, union) === undefined) return false;
  const plan = planStore(edge, ctx, response, requestTime, responseTime);
  if (!plan.storable || plan.id !== partial.id) return false;
  const { range: _piece, ...fields } = plan.record;
  const record: Omit<EntryRecord, 'bodyId' | 'chunks' | 'size'> = whole
    ? { ...fields, status: 200 }
    : { ...fields, status: 206, range: union };

  ctx.id = plan.id;
  ctx.holdLog = true;
  const writer = edge.store.createWriter(ctx.storage);
  const out = new Rechunker(writer, edge.config.cache.chunkSize, edge.store.memory.accepts(size));
  try {
    let ok: boolean;
    try {
      ok = await writeUnion(edge, out, partial, piece, response.body);
    } catch {
      ok = false;
    }
    if (!ok || out.size !== size) {
      writer.abort();
      if (!response.body.destroyed) response.body.destroy();
      if (writer.failed) {
        ctx.insert = 'aborted-store-failed';
        sendError(edge, ctx, new EdgeError('EDGE_ERR_STORE_WRITE', 'cache write failed'), false);
        return true;
      }
      ctx.insert = 'aborted-incomplete';
      edge.log.warn({ url: ctx.key, origin: ctx.origin }, 'origin range response incomplete; not combined');
      sendError(
        edge,
        ctx,
        new EdgeError('EDGE_ERR_ORIGIN_BODY_INCOMPLETE', 'origin response incomplete'),
        false,
      );
      return true;
    }
    const last = out.rest();
    const result = await writer.commit(plan.id, record, last, () => {
      if (edge.store.purgeGeneration(ctx.storage) !== generation) return false;
      // Only onto the piece it was combined with: anything stored since wins.
      return edge.store.holdsBodyInTxn(plan.id, partial.record.bodyId);
    });
    ctx.insert =
      result === 'stored' ? 'stored' : result === 'superseded' ? 'aborted-purged' : 'aborted-store-failed';
    if (result === 'failed') {
      sendError(edge, ctx, new EdgeError('EDGE_ERR_STORE_WRITE', 'cache write failed'), false);
      return true;
    }
    ctx.cacheStatus.stored = result === 'stored';
    const body = out.whole();
    if (result === 'stored' && body !== undefined) edge.store.memory.set(writer.bodyId, body);
    // A superseded body stays readable for its grace period: the client is answered from it.
    deliverStored(edge, ctx, { ...record, bodyId: writer.bodyId, chunks: writer.chunks, size });
    return true;
  } finally {
    ctx.holdLog = false;
  }
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
  /** Everything written, kept for the memory tier when the body is small. */
  readonly #all: Buffer[] | undefined;

  constructor(writer: BodyWriter, chunkSize: number, keepWhole: boolean) {
    this.#writer = writer;
    this.#chunkSize = chunkSize;
    this.#all = keepWhole ? [] : undefined;
  }

  async push(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.size += data.length;
    this.#all?.push(data);
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

  whole(): Buffer | undefined {
    return this.#all === undefined ? undefined : Buffer.concat(this.#all, this.size);
  }
}
