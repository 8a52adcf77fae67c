/**
 * One error type for the whole node. Every failure carries a stable code
 * (`EDGE_ERR_<AREA>_<WHAT>`), who caused it, the HTTP status to answer with,
 * and whether trying again (elsewhere) could help. Codes are listed in
 * docs/errors.md; a test keeps the two in sync.
 */

export type ErrorSource = 'client' | 'origin' | 'internal';

interface ErrorSpec {
  readonly source: ErrorSource;
  readonly status: number;
  readonly retryable: boolean;
  /** RFC 9209 Proxy-Status error type, when the error is answered to a client. */
  readonly proxyStatus?: string;
  readonly description: string;
}

export const ERROR_CODES = {
  EDGE_ERR_CONFIG_INVALID: {
    source: 'internal',
    status: 500,
    retryable: false,
    description: 'The configuration failed validation; the message lists every problem with its path.',
  },
  EDGE_ERR_CONFIG_READ: {
    source: 'internal',
    status: 500,
    retryable: false,
    description: 'The configuration file could not be read or parsed.',
  },
  EDGE_ERR_STARTUP: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      "The node could not start: a listener's address is in use or not permitted, or the cache directory cannot be used (a file, not writable, on /proc, served by a running node); the message names which.",
  },
  EDGE_ERR_CLIENT_BAD_REQUEST: {
    source: 'client',
    status: 400,
    retryable: false,
    description:
      'The request is malformed (Host missing, duplicated or invalid, bad target, a WebSocket handshake that declares content, a chunked body whose framing breaks part-way: the origin request streaming it aborted); answered 400 and the connection closed.',
  },
  EDGE_ERR_CLIENT_MISDIRECTED: {
    source: 'client',
    status: 421,
    retryable: false,
    description: 'No site is configured for the request Host.',
  },
  EDGE_ERR_CLIENT_ADMIN_TOKEN: {
    source: 'client',
    status: 403,
    retryable: false,
    description:
      'A request on a client listener carried the admin token; it is refused and never forwarded to an origin (the admin API has its own listener).',
  },
  EDGE_ERR_CLIENT_ONLY_IF_CACHED: {
    source: 'client',
    status: 504,
    retryable: false,
    description: 'The request said only-if-cached and no usable stored response exists (RFC 9111 §5.2.1.7).',
  },
  EDGE_ERR_CLIENT_NOT_ACCEPTABLE: {
    source: 'client',
    status: 406,
    retryable: false,
    description:
      'Accept-Encoding excludes identity and gives every content coding weight 0 (RFC 9110 §12.5.3), on a request the cache cannot answer.',
  },
  EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED: {
    source: 'client',
    status: 405,
    retryable: false,
    description:
      'CONNECT and TRACE are refused (the node is no forward proxy and echoes nothing); the answer lists Allow.',
  },
  EDGE_ERR_CLIENT_BODY_TIMEOUT: {
    source: 'client',
    status: 408,
    retryable: false,
    description:
      'The request body paused longer than proxy.requestBodyTimeout; answered 408 and the connection closed, the origin request aborted.',
  },
  EDGE_ERR_CLIENT_REQUEST_TIMEOUT: {
    source: 'client',
    status: 408,
    retryable: false,
    description:
      'The request head did not arrive within proxy.requestTimeout (at most 20 s for the head); answered 408 by the HTTP parser and the connection closed.',
  },
  EDGE_ERR_CLIENT_TRANSFER_CODING: {
    source: 'client',
    status: 501,
    retryable: false,
    description:
      'The request uses a transfer coding other than chunked (RFC 9112 §6.1); answered 501 and the connection closed.',
  },
  EDGE_ERR_CLIENT_EXPECTATION: {
    source: 'client',
    status: 417,
    retryable: false,
    description:
      'The request carries an Expect other than 100-continue (RFC 9110 §10.1.1); answered 417 before its body is read, the connection kept.',
  },
  EDGE_ERR_CLIENT_VERSION: {
    source: 'client',
    status: 505,
    retryable: false,
    description:
      'The request line names an HTTP version other than 1.x; answered 505 and the connection closed.',
  },
  EDGE_ERR_CLIENT_FORBIDDEN: {
    source: 'client',
    status: 403,
    retryable: false,
    description:
      "The site's security rules refuse the request: its address (security.deny), its country or region (security.countries), or a filter (security.block).",
  },
  EDGE_ERR_CLIENT_RATE_LIMITED: {
    source: 'client',
    status: 429,
    retryable: false,
    description:
      "The client (or key) is over the site's security.rateLimit; answered with Retry-After, RateLimit-Policy and RateLimit.",
  },
  EDGE_ERR_CLIENT_ORIGIN_RATE_LIMITED: {
    source: 'client',
    status: 429,
    retryable: false,
    description:
      "The client is over the site's security.originLimit: a request that would reach the origin (miss, pass, revalidation) is refused while hits are still served; answered with Retry-After, RateLimit-Policy and RateLimit.",
  },
  EDGE_ERR_CLIENT_URL_TOO_LONG: {
    source: 'client',
    status: 414,
    retryable: false,
    description:
      "The request target is longer than the site's security.limits.maxUrlLength, or so long that the request head passes proxy.maxHeaderSize before its request line ends (answered by the HTTP parser, the connection closed).",
  },
  EDGE_ERR_CLIENT_HEADERS_TOO_LARGE: {
    source: 'client',
    status: 431,
    retryable: false,
    description:
      'The request has more header fields than security.limits.maxHeaders, or more header bytes than security.limits.maxHeaderBytes; answered and the connection closed.',
  },
  EDGE_ERR_CLIENT_BODY_TOO_LARGE: {
    source: 'client',
    status: 413,
    retryable: false,
    description:
      "The request body is over the site's security.limits.maxBodySize: a Content-Length over it is answered before the body is read, a chunked body is cut as it grows past it (the origin request aborted); the connection is closed.",
  },
  EDGE_ERR_ORIGIN_CONNECT: {
    source: 'origin',
    status: 502,
    retryable: true,
    proxyStatus: 'connection_refused',
    description: 'The origin refused or reset the connection, or could not be reached.',
  },
  EDGE_ERR_ORIGIN_DNS: {
    source: 'origin',
    status: 502,
    retryable: true,
    proxyStatus: 'dns_error',
    description: "The origin's host name could not be resolved.",
  },
  EDGE_ERR_ORIGIN_CONNECT_TIMEOUT: {
    source: 'origin',
    status: 504,
    retryable: true,
    proxyStatus: 'connection_timeout',
    description: 'Connecting to the origin took longer than origins[].connectTimeout.',
  },
  EDGE_ERR_ORIGIN_TIMEOUT: {
    source: 'origin',
    status: 504,
    retryable: false,
    proxyStatus: 'http_response_timeout',
    description: 'The origin did not send response headers within origins[].responseTimeout.',
  },
  EDGE_ERR_ORIGIN_PROTOCOL: {
    source: 'origin',
    status: 502,
    retryable: false,
    proxyStatus: 'http_protocol_error',
    description:
      "The origin answered with something that is not valid HTTP: invalid bytes in a field, an obs-folded line, no status line, response headers past the parser's bound, a `Transfer-Encoding` other than `chunked` (its body would reach the client still coded), `Content-Length` beside `Transfer-Encoding` or more than one `Content-Length` (equal values too: RFC 9112 §6.3 lets a recipient refuse them), a status below 100 or above 599, a 101 to a request that asked no upgrade or, to a WebSocket handshake, a 101 whose `Upgrade` is not `websocket`, a 206 to a request for the whole response. Nothing is stored.",
  },
  EDGE_ERR_ORIGIN_BODY_INCOMPLETE: {
    source: 'origin',
    status: 502,
    retryable: false,
    proxyStatus: 'http_response_incomplete',
    description:
      'The origin response body ended before it was complete; nothing was stored. A client that had received part of the body sees it cut short; one that had received none of it is answered 502.',
  },
  EDGE_ERR_ORIGIN_LOOP: {
    source: 'origin',
    status: 508,
    retryable: false,
    proxyStatus: 'proxy_loop_detected',
    description:
      'The request already passed through this node (its own CDN-Loop entry, or its name `tiers.maxHops` times, default 3, in CDN-Loop or Via): an origin leads back here. Answered 508 without asking an origin (RFC 8586).',
  },
  EDGE_ERR_ORIGIN_UNAVAILABLE: {
    source: 'origin',
    status: 503,
    retryable: false,
    proxyStatus: 'destination_unavailable',
    description: "No origin of the site's pool is available.",
  },
  EDGE_ERR_ORIGIN_FAILING: {
    source: 'origin',
    status: 502,
    retryable: false,
    proxyStatus: 'destination_unavailable',
    description:
      'Requests waiting for one fetch of a key: the origin answered a server error to it and to each fetch elected after it (three in a row); the waiters are answered this (or a stale entry within stale-if-error) instead of each asking the origin again.',
  },
  EDGE_ERR_TUNNEL_LIMIT: {
    source: 'internal',
    status: 503,
    retryable: false,
    proxyStatus: 'connection_limit_reached',
    description:
      'A WebSocket handshake arrived while this process already held `proxy.maxTunnels` tunnels open, or once the node began to stop (a handshake pipelined behind a slow answer); the origin is not asked and the connection is closed after the answer.',
  },
  EDGE_ERR_STORE_WRITE: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      'A write to the LMDB cache failed (disk or map full, an I/O error, a damaged file); the node keeps serving hits and passes misses through.',
  },
  EDGE_ERR_STORE_CORRUPT: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      'The cache file is damaged (not LMDB, truncated, unreadable); the node refuses to start with this one line instead of crashing.',
  },
  EDGE_ERR_STORE_SCHEMA: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      'The cache directory was written by a newer version (unknown store schema or entry record version); the node refuses to start. Older schemas are migrated.',
  },
  EDGE_ERR_STORE_CHECKSUM: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      'A stored record or body chunk failed its checksum on read; it is removed and fetched again (a miss), logged once per entry.',
  },
  EDGE_ERR_PURGE_QUARANTINED: {
    source: 'internal',
    status: 500,
    retryable: false,
    description:
      'A logged purge could not be applied at startup; it is set aside (listed in /stats), what it names is marked stale where possible, and the node starts.',
  },
  EDGE_ERR_INTERNAL: {
    source: 'internal',
    status: 500,
    retryable: false,
    proxyStatus: 'proxy_internal_error',
    description: 'An unexpected failure inside the node.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class EdgeError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly status: number;
  readonly retryable: boolean;
  readonly proxyStatus: string | undefined;
  /** The origin that failed (by name), when an origin was tried. */
  readonly origin: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; origin?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.origin = options?.origin;
    const spec: ErrorSpec = ERROR_CODES[code];
    this.name = 'EdgeError';
    this.code = code;
    this.source = spec.source;
    this.status = spec.status;
    this.retryable = spec.retryable;
    this.proxyStatus = spec.proxyStatus;
  }
}

export function isEdgeError(value: unknown): value is EdgeError {
  return value instanceof EdgeError;
}
