/**
 * The one configuration schema: types, defaults, bounds and the descriptions that
 * docs/configuration.md documents. Unknown keys are errors everywhere.
 */
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { backupOrigins, backupProblem } from './backups.ts';
import { compressionSchema, siteCompressionSchema } from './compression-schema.ts';
import { durationField, sizeField } from './fields.ts';
import { fleetSchema } from './fleet-schema.ts';
import { clientCacheControlSchema, rulesSchema } from './rules-schema.ts';
import { securitySchema } from './security-schema.ts';
import { type ListenAddress, parseListen } from './units.ts';

/** `10.0.0.5`, `10.0.0.0/8`, `::1`, `fd00::/8`. */
function isAddressOrRange(value: string): boolean {
  const [address = '', prefix, extra] = value.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const size = (description: string) => sizeField().describe(description);

const duration = (description: string) => durationField().describe(description);

/** A time allowed: 0 would be no limit at all to undici (a black-holing origin held forever). */
const positiveDuration = (description: string) =>
  durationField()
    .refine((ms) => ms > 0, { message: 'must be more than 0' })
    .describe(description);

const listen = (description: string) =>
  z
    .string()
    .refine((value) => parseListen(value) !== undefined, {
      message: 'expected HOST:PORT, e.g. 127.0.0.1:8080',
    })
    .describe(description);

/**
 * Scheme, host and port only: a path or query would be dropped from every request, credentials
 * would never be sent (and would show in /stats), and port 0 cannot be connected to.
 */
export function isOriginUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    url.port !== '0' &&
    url.pathname === '/' &&
    !url.search &&
    !url.hash &&
    !url.username &&
    !url.password
  );
}

export const ORIGIN_URL_EXPECTED =
  'expected an http:// or https:// URL of a host and port, with no path, query, fragment or credentials, e.g. http://10.0.0.5:8080';

const originUrl = z
  .string()
  .refine(isOriginUrl, { message: ORIGIN_URL_EXPECTED })
  .describe('Where the origin is reached: scheme, host and port, no path.');

const region = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes, e.g. us, eu-west')
  .describe('A region name (free-form: us, eu-west, ...).');

type SelectionMode = 'latency' | 'round-robin' | 'least-request' | 'hash';

const positiveInt = (max: number) => z.number().int().min(1).max(max);

export const originSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash and underscore only')
      .describe('Name that sites refer to.'),
    url: originUrl,
    hostHeader: z
      .string()
      .optional()
      .describe("Host header sent to this origin; default: the client's Host."),
    connectTimeout: positiveDuration(
      'Time allowed to open a connection; a timeout answers 504 (or tries another origin). Default: 1s for an origin of a site with two or more origins, else 5s.',
    ).optional(),
    responseTimeout: positiveDuration(
      'Time allowed until response headers arrive; a timeout answers 504.',
    ).default(30_000),
    bodyTimeout: positiveDuration(
      'Longest pause allowed between two pieces of a response body; the response is cut short.',
    ).default(30_000),
    connections: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(128)
      .describe('Keep-alive connections per origin.'),
    region: region
      .optional()
      .describe(
        'Region the origin is in; selection prefers origins in the preferred region (docs/origins.md).',
      ),
    weight: z
      .number()
      .min(0.01)
      .max(1000)
      .default(1)
      .describe('Relative capacity: the selection cost of this origin is divided by it.'),
    maxConnections: positiveInt(100_000)
      .optional()
      .describe(
        'Requests in flight at which the origin counts as saturated and traffic spills to the next one; default: connections.',
      ),
    tier: z
      .enum(['parent'])
      .optional()
      .describe(
        'parent: this origin is another Strata node (a shield) closer to the origin; requests to it carry the signed Strata-Tier header and it passes tier fields back (docs/tiers.md).',
      ),
    tls: z
      .strictObject({
        ca: z
          .string()
          .min(1)
          .optional()
          .describe("PEM file of the CAs that sign the origin's certificate (default: the system's)."),
        servername: z
          .string()
          .min(1)
          .optional()
          .describe(
            "Server name sent (SNI) and checked in the origin's certificate (default: the URL's host).",
          ),
        verify: z
          .boolean()
          .default(true)
          .describe("Verify the origin's certificate (false: any certificate is accepted; for tests only)."),
      })
      .prefault({})
      .describe('TLS to an https:// origin.'),
  })
  // Over plain http:// the CA, server name and verify setting are never used: an operator who
  // wrote them meant TLS (and a CA file would not even be read to say it is missing).
  .refine(
    (origin) =>
      !origin.url.toLowerCase().startsWith('http:') ||
      (origin.tls.ca === undefined && origin.tls.servername === undefined && origin.tls.verify),
    {
      path: ['tls'],
      message: 'applies to https:// origins only: this one is reached over plain http://, without TLS',
    },
  );

export const retrySchema = z
  .strictObject({
    attempts: positiveInt(10)
      .default(3)
      .describe(
        'Most origins one request is sent to (the first try included); each retry goes to another origin.',
      ),
    budgetPercent: z
      .number()
      .min(0)
      .max(100)
      .default(20)
      .describe(
        'Retries allowed as a percentage of the requests of the last 10 seconds, on top of minPerSecond.',
      ),
    minPerSecond: z
      .number()
      .min(0)
      .max(100_000)
      .default(10)
      .describe('Retries per second always allowed, whatever the traffic.'),
  })
  .prefault({});

export const outlierSchema = z
  .strictObject({
    consecutiveFailures: positiveInt(1000)
      .default(5)
      .describe(
        'Failures in a row (connect errors, timeouts, 5xx, bodies cut short) after which an origin is ejected.',
      ),
    baseEjection: duration(
      'First ejection time; each further ejection in a row doubles it, up to maxEjection. A Retry-After is honoured as a minimum.',
    ).default(10_000),
    maxEjection: duration('Longest ejection.').default(300_000),
    maxEjectedPercent: z
      .number()
      .min(0)
      .max(100)
      .default(50)
      .describe('Most origins of a site ejected at once, in percent (at least one is always allowed).'),
  })
  .prefault({});

export const healthCheckSchema = z.strictObject({
  path: z
    .string()
    .regex(/^\//, 'a path starting with /')
    .default('/')
    .describe('Path probed with GET on each origin of the site (default /).'),
  // 0 would probe without pause (hundreds of probes a second per origin), or fail every probe.
  interval: positiveDuration(
    'Time between two probes of one origin (each jittered by up to ±10%; default 5s).',
  ).default(5000),
  timeout: positiveDuration('Time allowed for a probe to answer with headers (default 2s).').default(2000),
  healthy: positiveInt(100)
    .default(2)
    .describe('Successful probes in a row that mark an origin healthy (default 2).'),
  unhealthy: positiveInt(100)
    .default(3)
    .describe('Failed probes in a row that mark an origin unhealthy (default 3).'),
  expect: z
    .string()
    .regex(/^[1-5]\d\d(-[1-5]\d\d)?$/, 'a status or a range, e.g. 200 or 200-399')
    .refine((range) => !/^\d{3}-\d{3}$/.test(range) || range.slice(0, 3) <= range.slice(4), {
      message: 'the first status of a range must not be above the last (no status would pass)',
    })
    .default('200-399')
    .describe('Statuses a probe must answer to count as a success (default 200-399).'),
  host: z
    .string()
    .regex(
      /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/,
      'a host name or address, with an optional :port',
    )
    .optional()
    .describe(
      "Host sent with each probe. Default: the origin's hostHeader, else for a parent tier the site's first host name that is no wildcard, else the origin's own authority.",
    ),
});

export const siteSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .describe(
      'Unique name of the site: shown in GET /stats (sites, security) and as the site label of strata_origin_retry_budget_exhausted_total.',
    ),
  hosts: z
    .array(
      z
        .string()
        .regex(/^(\*|(\*\.)?[A-Za-z0-9.-]+(:\d+)?)$/, 'expected a host name, *.example.com or *')
        // Requests are matched in their canonical spelling (docs/security.md): no default port.
        .refine((host) => !/:0*(80|443)$/.test(host), {
          message: 'leave out :80 and :443: a request naming the default port is matched without it',
        })
        // ...and without the trailing dot of a fully qualified name.
        .transform((host) => host.toLowerCase().replace(/\.(?=:\d+$|$)/, '')),
    )
    .min(1)
    .describe('Host patterns this site answers: exact names, *.example.com wildcards, or * for all.'),
  origins: z
    .array(z.string())
    .min(1)
    .describe('Names of the origins this site fetches from (list order breaks ties; docs/origins.md).'),
  selection: z
    .enum(['latency', 'round-robin', 'least-request', 'hash'])
    .optional()
    .describe(
      'How an origin is chosen within a preference tier: lowest latency cost, in turn, fewest requests in flight, or rendezvous hash of the cache key. Default: hash when the origins are parent tiers (each object on one shield), else latency.',
    ),
  goDirect: z
    .boolean()
    .default(false)
    .describe(
      'For a site whose origins are parent tiers: when every parent failed, go to the real origins listed in `backup` (false: answer the error; docs/tiers.md).',
    ),
  prefer: z
    .enum(['node-region', 'client-region', 'none'])
    .default('node-region')
    .describe("Which region's origins come first: the node's (node.region), the client's (geo), or none."),
  retry: retrySchema,
  outlier: outlierSchema,
  healthCheck: healthCheckSchema.optional().describe('Active health checks (off when absent).'),
  slowStart: duration(
    'After an origin recovers, its share of traffic ramps up over this time (0: at once).',
  ).default(10_000),
  backup: z
    .array(z.string())
    .default([])
    .describe(
      "Origins, or other sites (standing for their origins), used only when none of `origins` is usable. A name is an origin's if an origin has it, else a site's.",
    ),
  sortQuery: z
    .boolean()
    .default(false)
    .describe(
      'Sort query parameters in the cache key by name (a repeated name keeps its values in the order they came).',
    ),
  grace: duration(
    'Stale-while-revalidate window for responses that carry no stale directive (0: off). RFC 5861.',
  ).default(0),
  earlyHints: z
    .boolean()
    .default(false)
    .describe(
      "While a request for a stored page that must be revalidated waits for the origin, send the page's stored Link preload and preconnect hints to the client as 103 Early Hints. RFC 8297.",
    ),
  security: securitySchema.describe('Security at the edge for this site (docs/security.md).'),
  compression: siteCompressionSchema.describe('Compression for this site (docs/compression.md).'),
  clientCacheControl: clientCacheControlSchema,
  rules: rulesSchema,
  hsts: duration(
    'Strict-Transport-Security max-age sent on every answer of this site over TLS (0: none), a duration like every other: 365d, not 31536000 (a plain number is milliseconds). RFC 6797.',
  )
    .refine((ms) => ms === 0 || ms >= 1000, {
      message:
        'expected 0 (none) or at least 1s: under a second it is sent as max-age=0, which tells browsers to drop HSTS (a plain number is milliseconds: write 365d)',
    })
    .default(0),
  hstsIncludeSubDomains: z
    .boolean()
    .default(false)
    .describe('Add includeSubDomains to Strict-Transport-Security.'),
  httpsRedirect: z
    .union([z.boolean(), z.number().int().min(1).max(65535)])
    .default(false)
    .describe(
      'Answer requests of this site on plain listeners 308 to the same URL over https (true: port 443; a number: that port) instead of serving them.',
    ),
  errorPages: z
    .record(
      z.string(),
      z
        .string()
        .min(1)
        .refine((file) => errorPageProblem(file) === undefined, {
          error: (issue) => errorPageProblem(String(issue.input)),
        }),
    )
    .superRefine((pages, ctx) => {
      for (const status of Object.keys(pages))
        if (!/^[1-5](\d\d|xx)$/.test(status))
          ctx.addIssue({
            code: 'custom',
            path: [status],
            message: `"${status}" is not a status (502) or a status class (5xx)`,
          });
    })
    .optional()
    .describe(
      'Templates for the errors this node answers itself, by status (502) or class (5xx): a file each, read at start and reload; {status} {reason} {requestId} {code} are filled in; the type follows the extension (.html, .json, .xml, else text). docs/errors.md.',
    ),
});

/** Why an error page template cannot be used, or undefined. */
export function errorPageProblem(file: string): string | undefined {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return `${file} is not a file`;
    if (stat.size > 64 * 1024) return `${file} is larger than 64 KiB`;
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (cause) {
    return `cannot read ${file}: ${(cause as Error).message}`;
  }
}

export const cacheSchema = z
  .strictObject({
    dir: z.string().min(1).default('.strata-cache').describe('Directory of the LMDB cache environment.'),
    maxSize: size('Upper bound of stored bytes; least-recently-used entries are evicted before it.').default(
      4 * 1024 ** 3,
    ),
    maxObjectSize: size('Responses larger than this pass through unstored.').default(256 * 1024 ** 2),
    memorySize: size('Bytes of hot bodies kept in memory per worker in front of LMDB.').default(
      256 * 1024 ** 2,
    ),
    memoryObjectSize: size('Largest body kept in the in-memory tier.').default(4 * 1024 ** 2),
    chunkSize: size('Size of the body chunks written to LMDB (4KiB to 64MiB).')
      .refine((bytes) => bytes >= 4096 && bytes <= 64 * 1024 ** 2, { message: 'expected from 4KiB to 64MiB' })
      .default(256 * 1024),
    maxVariants: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe(
        'Most Vary variants kept for one URL; storing one more evicts the least recently used of them.',
      ),
    heuristicFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Heuristic freshness: this fraction of the time since Last-Modified (RFC 9111 §4.2.2).'),
    heuristicMax: duration('Cap on heuristic freshness.').default(86_400_000),
    maxErrorTtl: duration(
      'Longest a server error (5xx) is stored and reused, whatever its max-age (0: never stored); never served stale. Client errors (4xx) are stored only when cacheable by default (404, 405, 410, 414).',
    ).default(5_000),
    hitForPass: duration('How long an uncacheable key skips request collapsing.').default(120_000),
    commitDelay: duration(
      "How long a stored response's commit waits for others to share its LMDB write transaction (0: each commits at once). Fewer, larger transactions cost less per entry; a request that must wait for a commit starts it at once (docs/architecture.md).",
    )
      .refine((ms) => ms <= 1000, { message: 'expected at most 1s' })
      .default(20),
    convertHead: z
      .boolean()
      .default(true)
      .describe(
        'A HEAD the cache cannot answer leads a fill with GET (as nginx proxy_cache_convert_head): its client gets the head alone, a storable response is stored (the next GET is a hit), an unstorable body is not read. false: a HEAD miss reaches the origin as HEAD, nothing stored. docs/caching.md.',
      ),
    collapseTimeout: duration(
      "How long a collapsed request waits for the leader's response headers before fetching on its own (unstored).",
    ).default(30_000),
    tagHeaders: z
      .array(z.string())
      .default(['Surrogate-Key', 'Cache-Tag'])
      .describe(
        'Response headers whose values are indexed as tags (Surrogate-Key: space separated; others: comma).',
      ),
    passTagHeaders: z
      .boolean()
      .default(false)
      .describe('Deliver tag headers to clients instead of stripping them.'),
  })
  .prefault({});

export const adminSchema = z
  .strictObject({
    listen: listen('Admin listener (purge API, metrics, health); loopback by default.').default(
      '127.0.0.1:9091',
    ),
    token: z
      .string()
      .min(16, 'use at least 16 characters')
      .optional()
      .describe('Bearer token for the admin API (at least 16 characters).'),
    enabled: z.boolean().default(true).describe('Start the admin listener.'),
    authFailureLimit: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(20)
      .describe(
        'Failed tokens one client address may send per authFailureWindow; past it every call from that address is answered 429 until the window ends.',
      ),
    authFailureWindow: duration('Window in which failed admin tokens are counted per address.').default(
      60_000,
    ),
  })
  .prefault({});

export const purgePeerSchema = z.strictObject({
  url: z
    .string()
    .refine(
      (value) => {
        try {
          const url = new URL(value);
          return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search;
        } catch {
          return false;
        }
      },
      { message: 'expected the admin URL of a peer, e.g. http://10.0.0.6:9091' },
    )
    .describe("A peer's admin API base URL; purges are POSTed to <url>/purge."),
  token: z
    .string()
    .min(16, 'use at least 16 characters')
    .optional()
    .describe("The peer's admin bearer token."),
});

export const purgeSchema = z
  .strictObject({
    peers: z
      .array(purgePeerSchema)
      .default([])
      .describe('Nodes (peers, child tiers) that receive every purge, in order, until they acknowledge.'),
    retry: z
      .strictObject({
        initial: duration('Wait after the first failed delivery to a peer.').default(250),
        max: duration('Longest wait between two delivery attempts (the wait doubles up to it).').default(
          30_000,
        ),
      })
      .prefault({}),
    timeout: duration('Time allowed for one delivery to a peer.').default(5000),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(5000)
      .describe(
        'Most keys a purge visits per write transaction (each also stops after about 8 ms); hits are served between them.',
      ),
    logSize: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(10_000)
      .describe('Purge log entries kept once every peer has them (older ones are trimmed).'),
  })
  .prefault({});

export const loggingSchema = z
  .strictObject({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level.'),
    access: z.boolean().default(true).describe('Write one access-log line per request.'),
    accessFormat: z
      .enum(['json', 'combined'])
      .default('json')
      .describe(
        'Access-log format: json (one object per line, every field of docs/observability.md) or combined (the Apache/nginx combined format).',
      ),
    accessFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Write access-log lines to this file (appended; reopened on SIGUSR1, for logrotate) instead of standard output.',
      ),
    flushInterval: duration(
      'Longest time a log line waits in the write buffer before it is written (10ms to 1s).',
    )
      .refine((ms) => ms >= 10 && ms <= 1000, { message: 'expected from 10ms to 1s' })
      .default(1000),
  })
  .prefault({});

export const proxySchema = z
  .strictObject({
    trustedProxies: z
      .array(
        z.string().refine(isAddressOrRange, {
          message: 'expected an IP address or CIDR range, e.g. 10.0.0.0/8 or ::1',
        }),
      )
      .default([])
      .describe(
        'Addresses (or CIDR ranges) whose X-Forwarded-* and Forwarded headers are trusted and extended; from any other peer they are overwritten or removed (docs/operations.md, Header hygiene).',
      ),
    via: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/)
      .default('strata')
      .describe(
        'Pseudonym in Via, CDN-Loop and the Cache-Status cache name; give each tier its own to tell loops from tiers.',
      ),
    maxHeaderSize: size('Largest request header section accepted.').default(16 * 1024),
    requestTimeout: duration(
      'Time allowed to receive a complete request (at least 1s; 0 would let a slow client hold a connection for ever).',
    )
      .refine((ms) => ms >= 1000, {
        message:
          'expected at least 1s (0 turns the bound off: a slow client could hold a connection for ever)',
      })
      .default(60_000),
    keepAliveTimeout: duration('Idle time before a client connection is closed.').default(5000),
    pipelineDepth: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(4)
      .describe(
        'Requests of one client connection worked on at the same time (GET, HEAD, OPTIONS; any other method is worked on alone, in order); further pipelined requests wait, and the connection is not read meanwhile.',
      ),
    maxQueuedRequests: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(256)
      .describe('Pipelined requests of one connection allowed to wait; past it the connection is closed.'),
    sendTimeout: duration(
      'Longest wait for a client to take the next piece of a response (at most 64 KiB wait per response); the response is cut short.',
    ).default(30_000),
    requestBodyTimeout: duration(
      'Longest pause allowed in a request body, and the window its minimum rate is checked over; answered 408, the connection closed and the origin request aborted.',
    ).default(10_000),
    requestBodyMinRate: size(
      'Bytes per second a streamed request body must average over every requestBodyTimeout window (0: any progress); slower is answered 408.',
    ).default(8 * 1024),
    hideResponseHeaders: z
      .array(z.string().transform((name) => name.toLowerCase()))
      .default(['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version'])
      .describe('Origin response headers never delivered nor stored: they tell what runs behind the node.'),
    maxConnections: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(0)
      .describe(
        'Client connections a listener holds at once (0: no limit); past it new ones are closed at once.',
      ),
    maxRequestsPerConnection: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(0)
      .describe(
        'Requests one client connection may carry (0: no limit); the last is answered with Connection: close.',
      ),
    maxConnectionsPerClient: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(0)
      .describe(
        'Client connections one client (an IPv4 address, an IPv6 /64) holds at once per listener (0: no limit); past it new ones are closed.',
      ),
    requestBodyBuffer: size(
      'Request bodies of known length up to this size are received whole before an origin connection is taken.',
    ).default(64 * 1024),
    websockets: z
      .boolean()
      .default(true)
      .describe(
        'Tunnel WebSocket handshakes (HTTP/1.1 GET with Upgrade: websocket) to the origin once it answers 101 (docs/origins.md, WebSocket tunnels); false: Upgrade is ignored and the handshake goes on as a plain GET.',
      ),
    tunnelIdleTimeout: positiveDuration(
      'Longest time a WebSocket tunnel may carry no byte either way before both of its connections are closed.',
    ).default(60_000),
    maxTunnels: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(10_000)
      .describe(
        'WebSocket tunnels open at once per process (each worker its own; 0: no limit); past it a handshake is answered 503 (EDGE_ERR_TUNNEL_LIMIT).',
      ),
  })
  .prefault({});

/** A wildcard matches one label: `*.example.com` covers `a.example.com`, not `example.com` or `a.b.example.com`. */
const certificateHost = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, {
    message: 'expected a host name or *.example.com',
  })
  .transform((host) => host.toLowerCase());

export const sniSchema = z.strictObject({
  hosts: z
    .array(certificateHost)
    .min(1)
    .describe('Server names (SNI) this certificate answers: exact names or *.example.com (one label).'),
  cert: z.string().min(1).describe('PEM certificate chain file (leaf first).'),
  key: z.string().min(1).describe('PEM private key file.'),
});

export const nodeSchema = z
  .strictObject({
    region: region.optional().describe('Region this node runs in (for prefer: node-region).'),
    heap: z
      .enum(['default', 'small'])
      .default('default')
      .describe(
        "V8's heap sizing in each worker: default caps the young generation at 16 MB semi-spaces and the old generation's growth at 2.5x its live data between full collections; small stops the young generation from growing and holds the growth at 1.5x (less memory still under a steady miss load, more CPU per request: docs/operations.md, Memory).",
      ),
    backgroundNice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(0)
      .describe(
        "Nice levels below the request thread at which V8's background threads run in each worker (optimizing compiles, concurrent marking and sweeping, collection helpers), read at start. On a busy core requests then come first: a herd met while V8 compiles is answered sooner, but under a steady miss load the heap grows further between collections (10: about 60 MiB more anonymous memory). 0 leaves them at the process's priority. Linux only (docs/operations.md, CPU and priorities).",
      ),
    accept: z
      .enum(['primary', 'workers'])
      .default('primary')
      .describe(
        'With workers: who accepts client connections (read at start). primary hands each new connection to the workers in turn (node:cluster round robin): long-lived connections spread evenly, but every new connection costs a handover between processes, and one on its way to a worker that crashes is left unanswered. workers: each worker accepts from the shared socket itself: 2-2.7x the new connections per second measured, none stranded by a crash, but one worker may take most of a burst of long-lived connections (docs/operations.md, Workers).',
      ),
  })
  .prefault({});

/** `10.0.0.0/8`, `fd00::/8`: an address with a prefix length. */
function isCidr(value: string): boolean {
  return value.includes('/') && isAddressOrRange(value);
}

export const geoSchema = z
  .strictObject({
    database: z
      .string()
      .min(1)
      .optional()
      .describe(
        'MaxMind DB file (.mmdb, GeoIP2/GeoLite2 country or city) mapping client addresses to countries, used as regions.',
      ),
    networks: z
      .array(
        z.strictObject({
          cidr: z
            .string()
            .refine(isCidr, { message: 'expected a CIDR range, e.g. 10.0.0.0/8 or fd00::/8' })
            .describe('Client address range.'),
          region: region.describe('Region of the clients in the range.'),
        }),
      )
      .default([])
      .describe(
        'Client ranges mapped to regions; the most specific range wins, and any range wins over the database.',
      ),
  })
  .prefault({});

/** Why an MMDB file cannot be used, if it cannot: unreadable, or without the MaxMind metadata marker. */
export function mmdbProblem(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    return `cannot read ${file}: ${(cause as Error).message}`;
  }
  try {
    const tail = Buffer.alloc(128 * 1024);
    const { size } = fstatSync(fd);
    const length = Math.min(size, tail.length);
    readSync(fd, tail, 0, length, size - length);
    return tail.subarray(0, length).includes(MMDB_MARKER) ? undefined : `${file} is not a MaxMind DB file`;
  } finally {
    closeSync(fd);
  }
}

const MMDB_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com')]);

export const tlsSchema = z.strictObject({
  cert: z
    .string()
    .min(1)
    .describe('PEM certificate chain file of the default certificate (no or unknown SNI name).'),
  key: z.string().min(1).describe('PEM private key file of the default certificate.'),
  sni: z
    .array(sniSchema)
    .default([])
    .describe(
      'Certificates chosen by the server name the client asks for; exact names win over wildcards. Loaded on first use; reloaded when the files change and on SIGHUP.',
    ),
});

export const listenerSchema = z
  .strictObject({
    listen: listen('Address of a client listener.'),
    tls: tlsSchema
      .optional()
      .describe('Terminate TLS on this listener (TLS 1.2 minimum, 1.3 preferred); docs/tls.md.'),
    http2: z
      .boolean()
      .optional()
      .describe(
        'Offer HTTP/2 by ALPN beside HTTP/1.1 (default: true on TLS listeners; needs tls — no cleartext h2c).',
      ),
  })
  .superRefine((listener, ctx) => {
    if (listener.http2 === true && listener.tls === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['http2'],
        message: 'HTTP/2 needs tls (cleartext h2c is not offered)',
      });
    }
  });

export const http2Schema = z
  .strictObject({
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(128)
      .describe(
        'Streams one HTTP/2 connection may have open at once; more are refused (RST_STREAM REFUSED_STREAM).',
      ),
    maxHeaderListSize: size('Largest HTTP/2 header list (uncompressed) accepted.').default(16 * 1024),
    initialWindowSize: size('HTTP/2 stream flow-control window offered to clients.').default(1024 * 1024),
    maxSessionMemory: size(
      'Memory one HTTP/2 connection may hold (header tables, buffers) before new streams are refused.',
    ).default(10 * 1024 * 1024),
    resetLimit: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(200)
      .describe(
        'Streams a client may cancel (RST_STREAM) per resetWindow; past it the connection is closed with GOAWAY ENHANCE_YOUR_CALM (rapid-reset defence, CVE-2023-44487).',
      ),
    resetWindow: duration('Window in which cancelled streams are counted per connection.').default(10_000),
  })
  .prefault({});

export const tiersSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash and underscore, at most 64')
      .optional()
      .describe(
        "This node's id in CDN-Loop (`node=`) and in the Strata-Tier header it sends to parents. Default: derived from the cache directory's persisted node id.",
      ),
    secret: z
      .string()
      .min(32, 'use at least 32 characters')
      .optional()
      .describe(
        'Shared secret of the tiers: signs the Strata-Tier header a child sends to its parents (HMAC-SHA256) and verifies the one a child sends here. Needed by a site with parent origins; without it no child is trusted.',
      ),
    maxHops: positiveInt(32)
      .default(3)
      .describe(
        'A request that already passed through this many nodes of our proxy.via name (CDN-Loop or Via) is answered 508; one naming this very node (its tiers.id) is answered 508 at once.',
      ),
    maxSkew: duration(
      "Largest difference allowed between a Strata-Tier header's timestamp and this node's clock; an older or newer header is ignored.",
    ).default(30_000),
    fenceWindow: duration(
      'How long after applying a purge this node names it (Strata-Fence) to a parent when it asks for a key the purge may cover; a parent that has not applied it yet bypasses its stored entry for the request (docs/tiers.md). 0: no fence sent.',
    ).default(30_000),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    listeners: z
      .array(listenerSchema)
      .min(1)
      .default([{ listen: '127.0.0.1:8080' }])
      .describe('Client listeners.'),
    sites: z
      .array(siteSchema)
      .default([])
      .describe(
        'Sites: host patterns mapped to origins; a Host takes its exact name, else the longest matching *.suffix wildcard, else *.',
      ),
    origins: z.array(originSchema).default([]).describe('Origins the sites fetch from.'),
    cache: cacheSchema,
    compression: compressionSchema.describe(
      'Compressed representations stored beside identity bodies (docs/compression.md).',
    ),
    admin: adminSchema,
    purge: purgeSchema,
    logging: loggingSchema,
    proxy: proxySchema,
    node: nodeSchema,
    geo: geoSchema,
    http2: http2Schema,
    tiers: tiersSchema.describe('Chaining nodes into tiers: edges in front of shields (docs/tiers.md).'),
    fleet: fleetSchema.describe(
      'Optional purge bus and shared configuration on NATS JetStream (docs/tiers.md, Fleet).',
    ),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')], {
        error: 'expected a number of workers (1 to 256) or auto',
      })
      .default(1)
      .describe('Worker processes (auto: one per core).'),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.origins.forEach((origin, index) => {
      if (names.has(origin.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['origins', index, 'name'],
          message: `duplicate origin "${origin.name}"`,
        });
      }
      names.add(origin.name);
    });
    config.sites.forEach((site, index) => {
      site.origins.forEach((name, j) => {
        // Twice is not twice the share: it only made a one-origin site look like a choice (1 s connect timeout).
        if (site.origins.indexOf(name) !== j)
          ctx.addIssue({
            code: 'custom',
            path: ['sites', index, 'origins', j],
            message: `"${name}" is listed twice`,
          });
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['sites', index, 'origins', j],
            message: `no origin named "${name}"`,
          });
        }
      });
      site.backup.forEach((name, j) => {
        const problem = backupProblem(config, site, name);
        if (problem !== undefined)
          ctx.addIssue({ code: 'custom', path: ['sites', index, 'backup', j], message: problem });
      });
      if (site.prefer === 'client-region' && config.geo.networks.length === 0 && !config.geo.database) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', index, 'prefer'],
          message: 'client-region needs geo.networks or geo.database to know where clients are',
        });
      }
    });
    listenerClashes(config, ctx);
    tierProblems(config, ctx);
    regionProblems(config, ctx);
    countryProblems(config, ctx);
    if (config.cache.maxObjectSize > config.cache.maxSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['cache', 'maxObjectSize'],
        message: 'must not exceed cache.maxSize',
      });
    }
  })
  // A site's selection left unset: hash over parent tiers, else latency (siteSelection).
  .transform((config) => ({
    ...config,
    sites: config.sites.map((site) => ({ ...site, selection: siteSelection(config, site) })),
  }));

/** Whether two listen hosts cannot both bind one port (host names are left alone: not resolved). */
function hostsClash(a: string, b: string): boolean {
  if (a === b) return true;
  // `::` listens on every interface of both families (node binds it dual-stack); `0.0.0.0` on
  // every IPv4 one only: `0.0.0.0:P` and `[::1]:P` both bind.
  const any6 = (host: string) => host === '::' || host === '0:0:0:0:0:0:0:0';
  if ((any6(a) && isIP(b) !== 0) || (any6(b) && isIP(a) !== 0)) return true;
  return (a === '0.0.0.0' && isIP(b) === 4) || (b === '0.0.0.0' && isIP(a) === 4);
}

/**
 * Two listeners of one configuration on the same port, on one address or one of them on every
 * interface of its family: the second could never bind, and serve would blame another process.
 */
function listenerClashes(
  config: { listeners: { listen: string }[]; admin: { listen: string; enabled: boolean } },
  ctx: z.RefinementCtx,
): void {
  const taken: { address: ListenAddress; path: (string | number)[]; text: string }[] = [];
  const add = (text: string, path: (string | number)[]) => {
    const address = parseListen(text);
    if (address === undefined || address.port === 0) return;
    const host = address.host.toLowerCase();
    const clash = taken.find(
      (other) => other.address.port === address.port && hostsClash(other.address.host.toLowerCase(), host),
    );
    if (clash !== undefined)
      ctx.addIssue({
        code: 'custom',
        path,
        message: `${text} clashes with ${clash.path.join('.').replace(/\.(\d+)/g, '[$1]')} (${clash.text}): both cannot listen there`,
      });
    else taken.push({ address, path, text });
  };
  for (const [index, listener] of config.listeners.entries())
    add(listener.listen, ['listeners', index, 'listen']);
  if (config.admin.enabled) add(config.admin.listen, ['admin', 'listen']);
}

/**
 * A site's origins are all parent tiers or none (selection and goDirect depend on it); the real
 * origins behind its parents are reached only with goDirect, as its backups; parents need the secret.
 */
function tierProblems(
  config: {
    origins: { name: string; tier?: 'parent' | undefined }[];
    sites: z.output<typeof siteSchema>[];
    tiers: { secret?: string | undefined };
  },
  ctx: z.RefinementCtx,
): void {
  const parents = new Set(config.origins.filter((o) => o.tier === 'parent').map((o) => o.name));
  config.sites.forEach((site, index) => {
    const parentCount = site.origins.filter((name) => parents.has(name)).length;
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: ['sites', index, path], message });
    if (parentCount === 0) {
      if (site.goDirect) problem('goDirect', 'goDirect needs origins that are parent tiers (tier: parent)');
      return;
    }
    if (parentCount < site.origins.length)
      problem('origins', 'mixes parent tiers and real origins: list the real ones in backup, with goDirect');
    if (config.tiers.secret === undefined)
      problem('origins', 'parent tiers need tiers.secret (the Strata-Tier header is signed with it)');
    const direct = backupOrigins(config, site).filter((name) => !parents.has(name));
    if (direct.length > 0 && !site.goDirect)
      problem(
        'backup',
        `real origins (${direct.join(', ')}) behind parent tiers are used only with goDirect: true`,
      );
    if (direct.length === 0 && site.goDirect)
      problem('goDirect', 'goDirect needs the real origins in backup');
  });
}

/** Regions that no origin and not the node is in are typos: a client mapped there would match nothing. */
function regionProblems(
  config: {
    origins: { region?: string | undefined }[];
    node: { region?: string | undefined };
    geo: z.output<typeof geoSchema>;
  },
  ctx: z.RefinementCtx,
): void {
  const known = new Set(config.origins.flatMap((origin) => (origin.region ? [origin.region] : [])));
  if (config.node.region) known.add(config.node.region);
  const list = [...known].sort().join(', ') || 'none';
  config.geo.networks.forEach((network, index) => {
    if (!known.has(network.region)) {
      ctx.addIssue({
        code: 'custom',
        path: ['geo', 'networks', index, 'region'],
        message: `no origin is in region "${network.region}" (regions: ${list})`,
      });
    }
  });
  if (config.geo.database) {
    const problem = mmdbProblem(config.geo.database);
    if (problem) ctx.addIssue({ code: 'custom', path: ['geo', 'database'], message: problem });
  }
}

/** MaxMind's continent codes: what `geo.database` gives a client as its region. */
const CONTINENTS: ReadonlySet<string> = new Set(['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA']);
/**
 * ICU's region names, made on first use: made when the module loads, they put about 5 MiB more
 * in every process's resident memory at start (ICU's locale data read from the node binary),
 * for configurations without a country rule too (docs/performance.md).
 */
let regionNames: Intl.DisplayNames | undefined;

/** Whether `code` (upper case) is an ISO 3166-1 alpha-2 code assigned to a country or area. */
function assignedCountry(code: string): boolean {
  if (!/^[A-Z]{2}$/.test(code)) return false;
  regionNames ??= new Intl.DisplayNames(['en'], { type: 'region' });
  const name = regionNames.of(code);
  return name !== undefined && name !== code && name !== 'Unknown Region';
}

/**
 * A country rule's codes are what a client can be placed in: ISO country codes and continent
 * codes (geo.database), and the regions geo.networks names. Anything else (`Germany`, `XX`)
 * matches no client: under an allow list every client refused, under a deny list none.
 */
function countryProblems(
  config: { sites: z.output<typeof siteSchema>[]; geo: z.output<typeof geoSchema> },
  ctx: z.RefinementCtx,
): void {
  const networks = new Set(config.geo.networks.map((network) => network.region.toUpperCase()));
  config.sites.forEach((site, index) => {
    const rules = site.security.countries;
    if (rules === undefined) return;
    for (const list of ['allow', 'deny'] as const) {
      rules[list]?.forEach((code, j) => {
        if (assignedCountry(code) || CONTINENTS.has(code) || networks.has(code)) return;
        ctx.addIssue({
          code: 'custom',
          path: ['sites', index, 'security', 'countries', list, j],
          message: `"${code}" is no ISO 3166-1 country code (DE, US), continent code (EU, NA) or geo.networks region: it would match no client`,
        });
      });
    }
  });
}

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type OriginConfig = z.output<typeof originSchema>;
/** A site as parsed: its selection resolved (siteSelection). */
export type SiteConfig = z.output<typeof siteSchema> & { selection: SelectionMode };
export type GeoConfig = z.output<typeof geoSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type OutlierConfig = z.output<typeof outlierSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type CacheConfig = z.output<typeof cacheSchema>;
export type PurgeConfig = z.output<typeof purgeSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type Http2Config = z.output<typeof http2Schema>;
export type TiersConfig = z.output<typeof tiersSchema>;

/** The site's origin selection: as configured, else hash for parent tiers (one shield per object), else latency. */
export function siteSelection(
  config: { origins: readonly { name: string; tier?: 'parent' | undefined }[] },
  site: { origins: readonly string[]; selection?: SelectionMode | undefined },
): SelectionMode {
  if (site.selection !== undefined) return site.selection;
  const parent = (name: string) => config.origins.some((o) => o.name === name && o.tier === 'parent');
  return site.origins.every(parent) ? 'hash' : 'latency';
}
