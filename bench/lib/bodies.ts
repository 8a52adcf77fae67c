/**
 * The bytes and headers every bench server agrees on: the origin sends them, the ceiling serves
 * them from memory, the proxies under test cache them. A bench path names its body size in its
 * last segment (`/1k`, `/herd/strata/1k`, `/large/1g`), or its exact length (`/3217b`, up to
 * 16 MiB); its first segment picks the behaviour: `/pass/...` is `no-store`, `/slow/...` waits
 * for the origin's delay, `/t/TAG/...` carries TAG, `/text/...` is a compressible text/plain body
 * (JSON lines; every other body is application/octet-stream, which no cache compresses),
 * `/vary/...` is answered with `Vary: Accept-Encoding`.
 */

export const BODY_SIZES = {
  '1k': 1024,
  '100k': 100 * 1024,
  '1m': 1024 * 1024,
  '1g': 1024 * 1024 * 1024,
} as const;
export type SizeName = keyof typeof BODY_SIZES;

/** Objects at or above this size are streamed by the origin, never held whole in memory. */
export const STREAMED_SIZE: SizeName = '1g';
export const STREAM_CHUNK_BYTES = 1024 * 1024;

export const CACHE_TTL_S = 3600;

export interface BenchPath {
  /** The named size, or null for an exact length (`/3217b`). */
  size: SizeName | null;
  /** Body length in bytes. */
  bytes: number;
  /** A compressible text/plain body instead of application/octet-stream. */
  text: boolean;
  /** Answered with `Vary: Accept-Encoding` (stored as a variant: two reads on a hit). */
  vary: boolean;
  pass: boolean;
  slow: boolean;
  tag: string | null;
}

function isSizeName(value: string | undefined): value is SizeName {
  return value !== undefined && Object.hasOwn(BODY_SIZES, value);
}

/** Largest exact length a bench path may ask for (`/16777216b`). */
const MAX_EXACT_BYTES = 16 * 1024 * 1024;

/** The last segment's length: a named size or `<N>b`; null when it is neither. */
function lengthOf(segment: string | undefined): { size: SizeName | null; bytes: number } | null {
  if (isSizeName(segment)) return { size: segment, bytes: BODY_SIZES[segment] };
  const exact = segment === undefined ? null : /^(\d{1,8})b$/.exec(segment);
  if (exact === null) return null;
  const bytes = Number(exact[1]);
  return bytes > 0 && bytes <= MAX_EXACT_BYTES ? { size: null, bytes } : null;
}

/** Reads a request target (`/slow/x/1k?u=1`) into what the bench servers must do with it. */
export function parseBenchPath(target: string): BenchPath | null {
  const queryAt = target.indexOf('?');
  const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
  const segments = pathname.split('/').filter((s) => s.length > 0);
  const length = lengthOf(segments.at(-1));
  if (length === null) return null;
  const first = segments[0];
  return {
    ...length,
    text: first === 'text',
    vary: first === 'vary',
    pass: first === 'pass',
    slow: first === 'slow',
    tag: first === 't' && segments.length > 2 ? (segments[1] ?? null) : null,
  };
}

const bodies = new Map<string, Buffer>();

/** A deterministic body of the given size (the streamed size is served as repeated chunks). */
export function bodyOf(size: SizeName): Buffer {
  const bytes = size === STREAMED_SIZE ? STREAM_CHUNK_BYTES : BODY_SIZES[size];
  let body = bodies.get(size);
  if (body === undefined) {
    body = Buffer.alloc(bytes, `strata bench body ${size}\n`);
    bodies.set(size, body);
  }
  return body;
}

/**
 * The whole body of a path that is not streamed: octet-stream filler, or for `/text/` JSON
 * lines whose numbers vary (brotli at level 4 keeps about a sixth of it, not a few bytes).
 */
export function bodyFor(path: BenchPath): Buffer {
  if (!path.text && path.size !== null) return bodyOf(path.size);
  const id = `${path.text ? 'text' : 'raw'}:${path.bytes}`;
  let body = bodies.get(id);
  if (body === undefined) {
    body = path.text ? jsonLines(path.bytes) : Buffer.alloc(path.bytes, 'strata bench body\n');
    bodies.set(id, body);
  }
  return body;
}

function jsonLines(bytes: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const price = ((i * 7919) % 100_000) / 100;
    const line = `{"id":${100_000 + i},"sku":"SKU-${((i * 2654435761) >>> 0).toString(36)}","price":${price},"stock":${(i * 31) % 977},"tags":["bench","strata"]}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

/** Headers the origin sends for a bench path: cacheable for an hour unless it is a pass path. */
export function originHeaders(path: BenchPath): Record<string, string> {
  const tags = path.tag === null ? ['bench'] : ['bench', path.tag];
  return {
    'content-type': path.text ? 'text/plain; charset=utf-8' : 'application/octet-stream',
    'content-length': String(path.bytes),
    'cache-control': path.pass ? 'no-store' : `public, max-age=${CACHE_TTL_S}`,
    etag: `"bench-${path.text ? 'text-' : ''}${path.size ?? `${path.bytes}b`}"`,
    'last-modified': 'Mon, 02 Nov 2026 00:00:00 GMT',
    'surrogate-key': tags.join(' '),
    'cache-tag': tags.join(','),
    ...(path.vary ? { vary: 'Accept-Encoding' } : {}),
  };
}

/**
 * Headers a hit carries: the origin's, less the tag headers a cache strips, plus Via, Age and
 * Cache-Status. The ceiling sends these so it writes as much as the caches do.
 */
export function hitHeaders(path: BenchPath, server: string): Record<string, string> {
  const { 'surrogate-key': _key, 'cache-tag': _tag, ...kept } = originHeaders(path);
  return { ...kept, via: `1.1 ${server}`, age: '0', 'cache-status': `${server}; hit; ttl=${CACHE_TTL_S}` };
}
