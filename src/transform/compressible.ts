/**
 * Which responses the node compresses: a compressible media type (the mime-db database's
 * `compressible` flag, text/* and configured extras), an identity body (no Content-Encoding),
 * status 200, and no `no-transform` (RFC 9110 §7.7: "a proxy MUST NOT transform the content
 * ... of a message that contains a no-transform cache-control directive"). Pure.
 */
import { createRequire } from 'node:module';

interface MimeEntry {
  compressible?: boolean;
}
/** mime-db, read on the first response that asks (about 1 MiB of heap a node need not hold at start). */
let mimeDb: Record<string, MimeEntry> | undefined;

/** The media type of a Content-Type value, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === '' ? undefined : type;
}

/**
 * An operator's list of media types as one test: exact names, and names with `*` standing for
 * any run of characters in the subtype (`application/*`, `application/vnd.*+json`). Built once
 * per list (the configuration's arrays live as long as the configuration).
 */
const listed = new WeakMap<readonly string[], (type: string) => boolean>();

function listedTest(extra: readonly string[]): (type: string) => boolean {
  let test = listed.get(extra);
  if (test === undefined) {
    const exact = new Set(extra.filter((type) => !type.includes('*')));
    const globs = extra
      .filter((type) => type.includes('*'))
      .map((type) => new RegExp(`^${type.replace(/[.+^$]/g, '\\$&').replaceAll('*', '[^/]*')}$`));
    test =
      globs.length === 0
        ? (type) => exact.has(type)
        : (type) => exact.has(type) || globs.some((glob) => glob.test(type));
    listed.set(extra, test);
  }
  return test;
}

export function compressibleType(contentType: string | undefined, extra: readonly string[] = []): boolean {
  const type = mediaType(contentType);
  if (type === undefined) return false;
  // The operator's list first: mime-db marks some text formats not compressible
  // (application/x-mpegurl playlists), and listing one is asking for it.
  if (extra.length > 0 && listedTest(extra)(type)) return true;
  mimeDb ??= createRequire(import.meta.url)('mime-db') as Record<string, MimeEntry>;
  const known = mimeDb[type]?.compressible;
  if (known !== undefined) return known;
  // mime-db's own fallbacks (as the `compressible` package applies them).
  return type.startsWith('text/') || /\+(?:json|text|xml)$/.test(type);
}

export interface CompressionCandidate {
  status: number;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  cacheControl: string | undefined;
}

/**
 * Whether a Cache-Control value carries `no-transform` (RFC 9110 §7.7: a proxy must not
 * transform the content: compress it, or decode it). Any Cache-Control line joined.
 */
export function noTransform(cacheControl: string | undefined): boolean {
  return cacheControl !== undefined && /(?:^|[\s,])no-transform(?:$|[\s,=])/i.test(cacheControl);
}

/** Whether a stored response may get compressed siblings (the size is checked once known). */
export function compressible(response: CompressionCandidate, extra: readonly string[] = []): boolean {
  if (response.status !== 200) return false;
  const coding = response.contentEncoding?.trim().toLowerCase();
  if (coding !== undefined && coding !== '' && coding !== 'identity') return false;
  if (noTransform(response.cacheControl)) return false;
  return compressibleType(response.contentType, extra);
}
