/**
 * The bytes and headers every bench server agrees on: the origin sends them, the ceiling serves
 * them from memory, the proxies under test cache them. A bench path names its body size in its
 * last segment (`/1k`, `/herd/strata/1k`, `/large/1g`); its first segment picks the behaviour:
 * `/pass/...` is `no-store`, `/slow/...` waits for the origin's delay, `/t/TAG/...` carries TAG.
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
  size: SizeName;
  pass: boolean;
  slow: boolean;
  tag: string | null;
}

function isSizeName(value: string | undefined): value is SizeName {
  return value !== undefined && Object.hasOwn(BODY_SIZES, value);
}

/** Reads a request target (`/slow/x/1k?u=1`) into what the bench servers must do with it. */
export function parseBenchPath(target: string): BenchPath | null {
  const queryAt = target.indexOf('?');
  const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
  const segments = pathname.split('/').filter((s) => s.length > 0);
  const size = segments.at(-1);
  if (!isSizeName(size)) return null;
  const first = segments[0];
  return {
    size,
    pass: first === 'pass',
    slow: first === 'slow',
    tag: first === 't' && segments.length > 2 ? (segments[1] ?? null) : null,
  };
}

const bodies = new Map<SizeName, Buffer>();

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

/** Headers the origin sends for a bench path: cacheable for an hour unless it is a pass path. */
export function originHeaders(path: BenchPath): Record<string, string> {
  const tags = path.tag === null ? ['bench'] : ['bench', path.tag];
  return {
    'content-type': 'application/octet-stream',
    'content-length': String(BODY_SIZES[path.size]),
    'cache-control': path.pass ? 'no-store' : `public, max-age=${CACHE_TTL_S}`,
    etag: `"bench-${path.size}"`,
    'last-modified': 'Mon, 02 Nov 2026 00:00:00 GMT',
    'surrogate-key': tags.join(' '),
    'cache-tag': tags.join(','),
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
