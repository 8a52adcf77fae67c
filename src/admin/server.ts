/**
 * The admin listener, on its own port (loopback by default): purge, cache inspection,
 * health, readiness, metrics and stats (HEAD answered as GET). Every route but GET /healthz (and
 * GET /readyz without an Authorization header, which answers the verdict alone) needs the bearer
 * token; an address that sends too many wrong ones is answered 429 for a while. Routes are
 * listed in docs/admin-api.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { beyondStoredKeys } from '../cache/key.ts';
import { isLoopbackHost } from '../config/check.ts';
import type { Config } from '../config/schema.ts';
import { parseListen } from '../config/units.ts';
import type { Edge } from '../edge/edge.ts';
import { EdgeError } from '../errors.ts';
import type { FleetBus } from '../fleet/bus.ts';
import { tokenMatches } from '../http/bearer.ts';
import { type Listener, startListener } from '../http/listener.ts';
import { MAX_TAG_LENGTH } from '../purge/command.ts';
import type { FanOut } from '../purge/fan-out.ts';
import type { PurgeService } from '../purge/service.ts';
import { keyOfPrefix } from '../purge/targets.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { inspectUrl, LIST_MAX, listEntries, storeStats } from './cache-view.ts';
import { handlePurge, handlePurgeMethod } from './purge-route.ts';
import { json } from './respond.ts';
import { compressionView, memoryView, trafficView } from './traffic.ts';

export interface AdminOptions {
  config: Config;
  edge: Edge;
  evict: () => Promise<void>;
  purge: PurgeService;
  /** Delivery to peers (absent in processes that do not run it). */
  fanOut: FanOut | undefined;
  /** The NATS purge bus (fleet.nats): readiness waits for its replay at start. */
  bus?: FleetBus | undefined;
  /** With workers: why a worker's cache writes fail, if one's do (health answers for the node). */
  workersWriteFailure?: (() => string | undefined) | undefined;
}

export { tokenMatches };

export async function startAdmin(options: AdminOptions): Promise<Listener> {
  const { config, edge } = options;
  const address = parseListen(config.admin.listen)!;
  if (config.admin.token === undefined && !isLoopbackHost(address.host)) {
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      'admin.token is required when the admin listener is not on loopback',
    );
  }
  const throttle = new AuthThrottle(config.admin.authFailureLimit, config.admin.authFailureWindow, edge.now);
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // An absolute target naming no valid URL (`http://[/stats`, a port past 65535): the parser
    // lets it through, the URL constructor throws. A client error, answered before the token.
    const url = URL.parse(req.url ?? '/', 'http://admin');
    if (url === null) return json(res, 400, { error: 'bad request target: not a path nor an absolute URL' });
    // RFC 9110 §9.3.2: HEAD is answered as GET is, without the body (node:http leaves it out).
    // A load balancer that checks with HEAD is not taken for a client guessing tokens.
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (method === 'GET' && url.pathname === '/healthz')
      return json(res, 200, health(edge, options.workersWriteFailure, options.bus));
    // A load balancer's readiness check sends no token: the verdict alone, without the reason.
    if (method === 'GET' && url.pathname === '/readyz' && req.headers.authorization === undefined)
      return readiness(res, options.bus, false);
    // Throttled addresses are not told whether a token is right: no guess is checked.
    const peer = req.socket.remoteAddress ?? '';
    const wait = throttle.retryAfter(peer);
    if (wait > 0) {
      res.setHeader('retry-after', String(wait));
      return json(res, 429, { error: 'too many failed tokens from this address' });
    }
    if (!tokenMatches(config.admin.token, req.headers.authorization)) {
      throttle.failed(peer);
      edge.log.warn({ client: peer }, 'admin call with a missing or wrong token');
      res.setHeader('www-authenticate', 'Bearer');
      return json(res, 401, {
        error: config.admin.token === undefined ? 'no admin token configured' : 'unauthorized',
      });
    }
    throttle.succeeded(peer);
    if (method === 'GET' && url.pathname === '/readyz') return readiness(res, options.bus, true);
    if (method === 'GET' && url.pathname === '/metrics') {
      const usage = edge.store.usage();
      edge.metrics.storeBytes.set(usage.bytes);
      edge.metrics.storeEntries.set(usage.entries);
      edge.metrics.purgeSequence.set(options.purge.log.sequence);
      options.bus?.stats(); // sets the bus's gauges (publish pending) as it reads them
      for (const peer of options.fanOut?.peers ?? []) {
        edge.metrics.purgePeerDelivered.labels(peer.url).set(peer.delivered);
        edge.metrics.purgePeerPending.labels(peer.url).set(peer.pending);
      }
      const text = await edge.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': edge.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (req.method === 'PURGE') return handlePurgeMethod(req, res, options.purge);
    if (req.method === 'POST' && url.pathname === '/purge') return handlePurge(req, res, options.purge);
    if (method === 'GET' && url.pathname === '/cache') return cacheRoute(options, url, res);
    if (method === 'GET' && url.pathname === '/stats') return json(res, 200, await stats(options));
    // RFC 9110 §15.5.6: a route that exists answers another method 405 with the ones it takes.
    const allowed = ROUTES[url.pathname];
    if (allowed !== undefined) {
      res.setHeader('allow', allowed);
      return json(res, 405, { error: `use ${allowed} ${url.pathname}` });
    }
    return json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
  return startListener(
    {
      host: address.host,
      port: address.port,
      maxHeaderSize: 16 * 1024,
      requestTimeout: 30_000,
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      handler(req, res).catch((error: unknown) => {
        edge.log.error({ err: error }, 'admin request failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
}

/** The methods each route takes (405 answers list them in Allow). */
const ROUTES: Record<string, string> = {
  '/healthz': 'GET, HEAD',
  '/readyz': 'GET, HEAD',
  '/metrics': 'GET, HEAD',
  '/purge': 'POST',
  '/cache': 'GET, HEAD',
  '/stats': 'GET, HEAD',
};

/**
 * Ready: 200. With the purge bus, 503 and the reason until the purges published while the node
 * was away are applied (bounded by fleet.readiness.catchUpTimeout, then 200 with a warning).
 * Not `detailed` (no token): the status alone, as a load balancer's check needs it; the reason
 * and warning (the bus's address, its errors) are for token holders.
 */
function readiness(res: ServerResponse, bus: FleetBus | undefined, detailed: boolean): void {
  const state = bus?.ready();
  if (state === undefined) return json(res, 200, { status: 'ready' });
  if (!state.ready)
    return json(res, 503, detailed ? { status: 'not-ready', reason: state.reason } : { status: 'not-ready' });
  return json(
    res,
    200,
    detailed && state.reason ? { status: 'ready', warning: state.reason } : { status: 'ready' },
  );
}

/**
 * The process runs: 200. `degraded` while the store refuses writes (disk full, a damaged file):
 * hits are served and misses pass through unstored until a write succeeds again. `degraded` too
 * while another live node holds this node's fleet.node: it serves, but receives no purge from the
 * bus (the other node's host and pid are in /stats, behind the token).
 */
function health(
  edge: Edge,
  workers: (() => string | undefined) | undefined,
  bus: FleetBus | undefined,
): { status: 'ok' | 'degraded'; store?: string; fleet?: string } {
  // This process's writes (with workers: the primary's purges, eviction, access times), else
  // what a worker told of its fills.
  const reason = edge.store.refusingWrites ? (edge.store.writeError ?? 'write failed') : workers?.();
  const fleet = bus?.problem;
  if (reason === undefined && fleet === undefined) return { status: 'ok' };
  return {
    status: 'degraded',
    ...(reason !== undefined ? { store: `refusing writes (${reason}); misses pass through unstored` } : {}),
    ...(fleet !== undefined ? { fleet } : {}),
  };
}

function sortQueryOf(edge: Edge): (host: string) => boolean {
  return (host) => edge.sites.resolve(host)?.sortQuery ?? false;
}

/** GET /cache?url=U (what is stored for U) or GET /cache?prefix=P | tag=T [&limit=N&after=ID]. */
function cacheRoute(options: AdminOptions, url: URL, res: ServerResponse): void {
  const { edge } = options;
  const params = url.searchParams;
  const target = params.get('url');
  if (target !== null) {
    const view = inspectUrl(edge.store, target, sortQueryOf(edge), edge.now(), (host, path) =>
      edge.sites.keyedTarget(host, path),
    );
    if (view.key === undefined)
      return json(res, 400, { error: `"${target}" is not an absolute http(s) URL` });
    return json(res, view.variants.length > 0 ? 200 : 404, view);
  }
  const problem = listingProblem(params);
  if (problem !== undefined) return json(res, 400, { error: problem });
  const limit = params.get('limit');
  if (limit !== null && (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > LIST_MAX)) {
    return json(res, 400, { error: `limit must be a number from 1 to ${LIST_MAX}` });
  }
  // The prefix a purge would take (scheme://host…): anything else listed every entry.
  const prefix = params.get('prefix');
  if (prefix !== null && prefix !== '' && keyOfPrefix(prefix) === undefined) {
    return json(res, 400, { error: `prefix "${prefix}" must start with scheme://host, as a purge's does` });
  }
  return json(
    res,
    200,
    listEntries(
      edge.store,
      {
        prefix: params.get('prefix') ?? undefined,
        tag: params.get('tag') ?? undefined,
        limit: limit === null ? undefined : Number(limit),
        after: params.get('after') ?? undefined,
      },
      edge.now(),
    ),
  );
}

/**
 * A tag longer than any indexed (a purge refuses it alike), or an `after` cursor longer than any
 * stored id (pages hand back an id they listed): LMDB cannot even seek to it.
 */
function listingProblem(params: URLSearchParams): string | undefined {
  const tag = params.get('tag');
  if (tag !== null && tag.length > MAX_TAG_LENGTH) return `a tag is longer than ${MAX_TAG_LENGTH} characters`;
  const after = params.get('after');
  if (after !== null && beyondStoredKeys(after))
    return 'after is no stored id: pass back the "next" of the previous page';
  return undefined;
}

async function stats(options: AdminOptions) {
  const { config, edge } = options;
  const view = storeStats(edge.store, options.purge.log, config.cache.maxSize);
  const metrics = await edge.metrics.gather();
  return {
    // Totals since start, summed over workers like /metrics (rates: strata top).
    traffic: trafficView(metrics),
    compression: compressionView(metrics),
    // The memory tiers of every process serving (with workers, the workers'; the primary's is empty).
    store: { ...view.store, ...memoryView(metrics) },
    collapse: { pending: edge.collapse.size, waiters: edge.collapse.waiters },
    // Per process: with workers, the primary's own view; metrics aggregate every worker.
    security: Object.fromEntries(edge.sites.all.map((site) => [site.name, site.guard?.stats()])),
    sites: edge.sites.all.map((site) => ({ site: site.name, ...site.pool.describe() })),
    purge: {
      ...view.purge,
      running: options.purge.pending,
      peers: options.fanOut?.peers ?? view.purge.peers,
    },
    ...(options.bus ? { fleet: options.bus.stats() } : {}),
  };
}
