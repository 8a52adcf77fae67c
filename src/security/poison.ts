/**
 * Cache poisoning guard: a response is not stored when it reflects the value of a request
 * header that is not part of the cache key — an origin that builds a script URL from
 * X-Forwarded-Host (or any unkeyed header) must not turn one request into every user's page.
 * Pure functions and a small scanner; no I/O.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FORWARDING_CLAIMS, forwardedParams, REQUEST_REWRITES } from '../http/headers.ts';
import { decodable, decoderOf, singleCoding } from '../transform/decoder.ts';

/** Bytes of a body searched for reflected values. */
export const SCAN_BYTES = 64 * 1024;
/** Values shorter than this are not searched (too likely to appear by chance). */
const MIN_VALUE = 4;

/**
 * Fields every browser or client sends with ordinary values, the validators and ranges the
 * node handles itself, and the fields the node sets or overwrites: their values are default,
 * not a claim to check.
 */
const ORDINARY: ReadonlySet<string> = new Set([
  'host',
  'accept',
  'accept-encoding',
  'accept-language',
  'accept-charset',
  'user-agent',
  'connection',
  'keep-alive',
  'cache-control',
  'pragma',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
  'referer',
  'cookie',
  'authorization',
  'content-length',
  'content-type',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'upgrade-insecure-requests',
  'dnt',
  'priority',
  'purpose',
  'save-data',
  'via',
  'cdn-loop',
  // Tier fields (docs/tiers.md): consumed by this node, never sent to an origin that is not a
  // parent tier, and signed by the child: no origin can reflect them into a stored answer.
  'strata-tier',
  'strata-fence',
  'strata-client',
  'x-forwarded-for',
  'x-forwarded-proto',
  'forwarded',
  'x-requested-with',
  'surrogate-capability',
  // Tracing and request ids: unique per request, and origins echo them back by design.
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-request-id',
  'x-correlation-id',
  'request-id',
  'x-amzn-trace-id',
  'x-cloud-trace-context',
]);

const NONE: ReadonlySet<string> = new Set();

/** Forwarding claims the node drops or overwrites for untrusted peers (trusted ones pass them on). */
const CLAIMS: ReadonlySet<string> = new Set(['x-forwarded-host', ...FORWARDING_CLAIMS]);
/** Never forwarded on a request whose answer may be stored. */
const REWRITES: ReadonlySet<string> = new Set(REQUEST_REWRITES);

/**
 * The values of unkeyed, non-default request fields that reach the origin on a fill: forwarding
 * claims of trusted peers that differ from what the node would send, and any field outside the
 * ordinary ones (and outside `vary`, which is keyed). Empty for an ordinary request.
 */
export function unkeyedValues(
  headers: IncomingHttpHeaders,
  host: string,
  trusted: boolean,
  vary: readonly string[] = [],
  ignore: ReadonlySet<string> = NONE,
): string[] {
  let values: string[] | undefined;
  const add = (value: string) => {
    values ??= [];
    for (const spelling of spellings(value, host)) if (!values.includes(spelling)) values.push(spelling);
  };
  for (const name in headers) {
    // HTTP/2 pseudo-header fields (:authority, :path, :method, :scheme) are the key itself.
    if (name.charCodeAt(0) === 58 /* : */) continue;
    // The Forwarded chain of a trusted proxy that sends no X-Forwarded-For goes on as it came
    // (forwardingHeaders): a host= in it other than the node's is a claim, as X-Forwarded-Host
    // is. Otherwise it is rebuilt from X-Forwarded-For, or overwritten: nothing of it is sent.
    if (name === 'forwarded') {
      if (trusted && headers['x-forwarded-for'] === undefined)
        for (const claimed of forwardedParams(headers.forwarded, 'host'))
          if (claimed.length >= MIN_VALUE && claimed.toLowerCase() !== host.toLowerCase()) add(claimed);
      continue;
    }
    if (ORDINARY.has(name) || REWRITES.has(name) || name.startsWith('sec-') || vary.includes(name)) continue;
    if (ignore.has(name)) continue;
    if (CLAIMS.has(name) && !trusted) continue; // dropped or overwritten before the origin sees it
    const raw = headers[name];
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      if (value === undefined || value.length < MIN_VALUE) continue;
      if (name === 'x-forwarded-host' && value.toLowerCase() === host.toLowerCase()) continue;
      // A cross-site Origin echoed into Access-Control-Allow-Origin without Vary: Origin would
      // hand one site's grant to every client; the page's own origin, and `null`, claim nothing.
      if (name === 'origin' && (value === 'null' || originHost(value) === host.toLowerCase())) continue;
      add(value);
    }
  }
  return values ?? [];
}

/**
 * The spellings to look for of query values the cache key leaves out (a `utm_content` an
 * excluded `utm_*` keeps out of the key still reaches the origin). Short values are left out,
 * as short header values are.
 */
export function unkeyedQueryValues(values: readonly string[], host: string): string[] {
  const out: string[] = [];
  for (const value of values) {
    if (value.length < MIN_VALUE) continue;
    for (const spelling of spellings(value, host)) if (!out.includes(spelling)) out.push(spelling);
  }
  return out;
}

/** The host (with a port other than the scheme's default) an Origin field names, lower-cased. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}

/** A list item shorter than this is not searched on its own (too likely to appear by chance). */
const MIN_ITEM = 8;

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** A host with a port (`evil.example:1`): frameworks (Express's req.hostname) write the host alone. */
const HOST_PORT = /^([a-z0-9.-]+):\d{1,5}$/i;

/**
 * The ways an origin may write a value back: as it came, each item of a list (a framework
 * taking the first of `X-Forwarded-Host: evil.example, shop.example`), a host without its port,
 * percent-encoded (a URL built from it, encodeURI or encodeURIComponent), HTML-escaped with
 * named or numeric references (a template printing it) and with its slashes escaped (a JSON or
 * script string, as PHP's json_encode writes them).
 */
function spellings(value: string, host: string): string[] {
  const out = [value];
  const add = (spelling: string | undefined) => {
    if (spelling !== undefined && !out.includes(spelling)) out.push(spelling);
  };
  if (value.includes(',')) {
    for (const item of value.split(',')) {
      const trimmed = item.trim();
      if (trimmed.length >= MIN_ITEM && trimmed.toLowerCase() !== host.toLowerCase()) add(trimmed);
    }
  }
  for (const variant of out.slice()) {
    const bare = HOST_PORT.exec(variant)?.[1];
    if (bare !== undefined && bare.length >= MIN_ITEM && bare.toLowerCase() !== host.toLowerCase()) add(bare);
  }
  for (const variant of out.slice()) {
    for (const encode of [encodeURI, encodeURIComponent]) {
      try {
        add(encode(variant));
      } catch {
        // a lone surrogate: no URL carries it
      }
    }
    add(variant.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]!));
    add(variant.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`));
    if (variant.includes('/')) add(variant.replaceAll('/', '\\/'));
  }
  return out;
}

/** Whether a response header value reflects one of `values` (case-insensitive). */
export function reflectedInHeaders(
  values: readonly string[],
  headers: Record<string, string | string[] | undefined>,
): boolean {
  if (values.length === 0) return false;
  const lower = values.map((value) => value.toLowerCase());
  for (const name in headers) {
    const raw = headers[name];
    for (const field of Array.isArray(raw) ? raw : [raw]) {
      if (field === undefined) continue;
      const text = field.toLowerCase();
      for (const value of lower) if (text.includes(value)) return true;
    }
  }
  return false;
}

/**
 * Watches the first SCAN_BYTES of a response body for any of `values` (across chunk
 * boundaries, case-insensitive for ASCII).
 */
export class ReflectionScanner {
  readonly #needles: Buffer[];
  readonly #overlap: number;
  #tail: Buffer = Buffer.alloc(0);
  #seen = 0;
  found = false;

  constructor(values: readonly string[]) {
    this.#needles = values.map((value) => Buffer.from(value.toLowerCase()));
    this.#overlap = Math.max(0, ...this.#needles.map((needle) => needle.length - 1));
  }

  /** The scan window is read: later bytes are not looked at. */
  get exhausted(): boolean {
    return this.#seen >= SCAN_BYTES;
  }

  /** Feeds the next body chunk; true once a value was found (within the scanned bytes). */
  scan(chunk: Buffer): boolean {
    if (this.found || this.#seen >= SCAN_BYTES) return this.found;
    const part = chunk.subarray(0, SCAN_BYTES - this.#seen);
    this.#seen += part.length;
    const window = lowerAscii(this.#tail.length > 0 ? Buffer.concat([this.#tail, part]) : part);
    for (const needle of this.#needles) {
      if (window.indexOf(needle) !== -1) {
        this.found = true;
        return true;
      }
    }
    this.#tail = Buffer.from(window.subarray(Math.max(0, window.length - this.#overlap)));
    return false;
  }
}

/** A body fed to a ReflectionScanner as it streams: `write` each chunk, then `end` for the verdict. */
export interface ScanFeed {
  /** True once a value was found (a coded body may tell only at `end`). */
  write(chunk: Buffer): boolean;
  /** Whether the body reflects a value: a coded body's decoded copy is read to the scan window. */
  end(): Promise<boolean>;
}

/**
 * Feeds the scanner the bytes a client will read: a body the origin coded (gzip, br, deflate,
 * zstd) is decoded for the scan, its first SCAN_BYTES decoded bytes read, since a reflection in
 * coded bytes is not there to see. A coding the node cannot decode (a stack, an unknown one) is
 * scanned as it comes; coded bytes that stop decoding are judged by what decoded before them.
 */
export function scanFeed(
  scanner: ReflectionScanner,
  contentEncoding: string | string[] | undefined,
): ScanFeed {
  // No coding, a stack of them or one the node cannot decode: the bytes as they come.
  const coding = singleCoding(contentEncoding);
  if (coding === undefined || !decodable(coding))
    return { write: (chunk) => scanner.scan(chunk), end: async () => scanner.found };
  const decoder = decoderOf(coding);
  let done = false;
  const finished = new Promise<void>((resolve) => {
    decoder.on('data', (decoded: Buffer) => {
      if (!scanner.scan(decoded) && !scanner.exhausted) return;
      done = true;
      decoder.destroy();
    });
    // Bytes that do not decode: what decoded before them was scanned (a client reads as much).
    decoder.once('error', () => resolve());
    decoder.once('end', resolve);
    decoder.once('close', resolve);
  });
  return {
    write(chunk) {
      if (!done && !decoder.destroyed) decoder.write(chunk);
      return scanner.found;
    },
    async end() {
      if (!done && !decoder.destroyed) decoder.end();
      await finished;
      return scanner.found;
    },
  };
}

function lowerAscii(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const byte = out[i]!;
    if (byte >= 65 && byte <= 90) out[i] = byte + 32;
  }
  return out;
}
