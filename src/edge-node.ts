/**
 * The one place that constructs and wires everything: store, eviction, origins, sites,
 * pipeline, listeners, admin listener.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { startAdmin } from './admin/server.ts';
import { lowerBackgroundThreads } from './background-threads.ts';
import { prepareCacheDir } from './cache/cache-dir.ts';
import { CollapseTable } from './cache/collapse.ts';
import { Evictor } from './cache/eviction.ts';
import { herdCollector } from './cache/scavenger.ts';
import { CacheStore } from './cache/store.ts';
import { backupOrigins } from './config/backups.ts';
import { formatProblems, validateConfig } from './config/load.ts';
import type { Config, ListenerConfig, SiteConfig } from './config/schema.ts';
import { formatListen, parseListen } from './config/units.ts';
import type { Edge } from './edge/edge.ts';
import { logParserRefusal } from './edge/phases/log.ts';
import { Pipeline } from './edge/pipeline.ts';
import { SiteTable } from './edge/sites.ts';
import { tunnelHandler } from './edge/tunnel.ts';
import { EdgeError } from './errors.ts';
import type { FleetBus } from './fleet/bus.ts';
import type { ApplyOutcome } from './fleet/config-watch.ts';
import type { FleetSections } from './fleet/sections.ts';
import { applyHeapProfile } from './heap.ts';
import { SEND_BUFFER } from './http/connection-guard.ts';
import { type Listener, startListener } from './http/listener.ts';
import type { SecureListener } from './http/secure-listener.ts';
import { newTicketKeys, TICKET_ROTATION_MS } from './http/ticket-keys.ts';
import type { ReloadReport } from './http/tls.ts';
import { createTrustList } from './http/trusted-proxies.ts';
import type { UpgradeHandler } from './http/upgrade.ts';
import { AccessLog } from './observability/access-log.ts';
import { cacheName } from './observability/cache-status.ts';
import { createLogger } from './observability/logger.ts';
import { createMetrics, type Metrics, withoutFleetMetrics } from './observability/metrics.ts';
import { errorDetail } from './origin/errors.ts';
import { GeoResolver } from './origin/geo.ts';
import { HealthChecker, type HealthListener, type HealthTarget } from './origin/health.ts';
import { eject } from './origin/outlier.ts';
import { type AttemptListener, type FailureListener, Origin, OriginPool } from './origin/pool.ts';
import { ORIGIN_STATUSES, type ProbeVerdict } from './origin/state.ts';
import { originTls } from './origin/tls.ts';
import { FanOut } from './purge/fan-out.ts';
import { PurgeFence } from './purge/fence.ts';
import { recoverPurges } from './purge/quarantine.ts';
import { PurgeService } from './purge/service.ts';
import type { GeoLookup } from './security/ip-rules.ts';
import type { RateShare } from './security/rate-share.ts';
import { SiteGuard } from './security/site-guard.ts';
import { within } from './within.ts';

export interface EdgeNodeOptions {
  config: Config;
  /** Wall clock in ms; tests inject their own. */
  now?: () => number;
  logger?: Logger;
  /** Run store upkeep (eviction, orphan sweep) in this process. Default true. */
  upkeep?: boolean;
  /** Run the active health checks in this process. Default: as upkeep (once per node). */
  healthChecks?: boolean;
  /** The collapse table (workers > 1: one that also holds the node-wide lock). */
  collapse?: CollapseTable;
  /** GeoIP lookup for the sites' country rules (address → country/region). */
  geo?: GeoLookup;
  /** Workers > 1: the sites' rate limits share their counts with the primary through this. */
  rateShare?: RateShare;
  /** TLS session ticket keys (48 bytes; workers > 1: the primary's, so tickets resume on any worker). */
  ticketKeys?: Buffer;
  /** Reload certificates when their files change (default true). */
  watchCertificates?: boolean;
  /** Bound of the records each process keeps decoded, in bytes (default 64 MiB; tests set less). */
  decodedBytes?: number;
  /** How long a replaced or removed body stays readable (default 60 s; tests set less). */
  bodyGraceMs?: number;
  /** The primary's: why a worker's cache writes fail, if one's do (its health says so). */
  workersWriteFailure?: () => string | undefined;
  /**
   * How a SIGHUP reads the configuration, with the fleet's shared sections in place of the
   * file's (undefined: the file alone). Default: this config with the sections replaced,
   * validated again.
   */
  loadShared?: (sections: FleetSections | undefined) => Config;
  /** A shared configuration from the fleet bucket was applied (the primary replaces its workers). */
  onSharedConfig?: (next: Config) => void;
}

export interface EdgeNode {
  readonly config: Config;
  readonly store: CacheStore;
  readonly metrics: Metrics;
  readonly edge: Edge;
  /** Client listeners' bound addresses, as HOST:PORT. */
  readonly addresses: string[];
  readonly adminAddress: string | undefined;
  /** Purges by URL, prefix and tag (the admin API's POST /purge). */
  readonly purge: PurgeService;
  /** Delivery of purges to configured peers (absent when this process runs no upkeep). */
  readonly fanOut: FanOut | undefined;
  /** The NATS purge bus and shared configuration (fleet.nats; absent without it or without upkeep). */
  readonly bus: FleetBus | undefined;
  /** The shared sections in force from the fleet bucket (a SIGHUP keeps them over the file's). */
  readonly sharedSections: FleetSections | undefined;
  /** Resolves when no fill or background revalidation is running. */
  idle(): Promise<void>;
  /** Runs one eviction pass now (tests and the admin API). */
  evict(): Promise<void>;
  /**
   * A worker that made bodies with `bodyIdPrefix` exited: the chunks of its bodies that no record
   * references (fills it left unfinished, bodies whose removal its timers held) are removed once
   * the grace period of those bodies is over. Resolves with how many (0 in a process that runs
   * no upkeep, or when the node closes first).
   */
  sweepBodiesOf(bodyIdPrefix: string): Promise<number>;
  /**
   * Takes sites and origins from a new configuration (SIGHUP) without dropping a connection:
   * requests already at an origin finish there, new ones use the new table. Returns the
   * top-level sections that differ but need a restart to take effect.
   */
  reloadSites(next: Config): string[];
  /** Origin state shared between the processes of a node (see src/cluster/). */
  readonly originEvents: OriginEvents;
  /** Reads every TLS listener's certificates again (SIGHUP); connections stay open. */
  reloadCertificates(why: string): ReloadReport[];
  /** TLS session ticket keys for every TLS listener (rotation). */
  setTicketKeys(keys: Buffer): void;
  /** Opens the access-log file again under its name (SIGUSR1, after logrotate moved it). */
  reopenLogs(): void;
  /** The TLS listeners (tests). */
  readonly secureListeners: readonly SecureListener[];
  /**
   * Drains and stops: listeners stop accepting, requests in flight and fills finish. Past
   * `drainMs` (default 10 s) connections still open are closed and origin requests still
   * running are ended, so a stuck origin (or one that leads back here) never holds the node.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Config sections a reload does not apply: they are read when a process starts (docs/operations.md, Signals). */
export const RESTART_SECTIONS = [
  'listeners',
  'cache',
  'admin',
  'workers',
  'proxy',
  'http2',
  'logging',
  'purge',
  'tiers',
  'fleet',
] as const;

/** The sites' country rules read the node's GeoIP resolver, when one is configured. */
function placeLookup(geo: GeoResolver): GeoLookup | undefined {
  return geo.enabled ? (address) => geo.place(address) : undefined;
}

/** Worker processes the configuration asks for. */
function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** What one process of a node tells the others about origins, and applies from them. */
export interface OriginEvents {
  /** Every health probe result (from the process that probes). */
  onHealth(listener: HealthListener): void;
  /** Every passive ejection decided here, with its length in ms. */
  onEjected(listener: (origin: string, ms: number) => void): void;
  /** Applies a probe result from the process that probes. */
  applyHealth(origin: string, verdict: ProbeVerdict, ms: number | undefined): void;
  /** Applies an ejection another process decided. */
  applyEjection(origin: string, ms: number): void;
  /** The current verdict of every checked origin (for a worker that starts). */
  healthSnapshot(): Array<{ name: string; verdict: ProbeVerdict }>;
}

/** How long a drain waits for requests and fills before it ends them. */
const DRAIN_MS = 10_000;

export async function createEdgeNode(options: EdgeNodeOptions): Promise<EdgeNode> {
  const { config } = options;
  const now = options.now ?? Date.now;
  const log =
    options.logger ??
    createLogger({ level: config.logging.level, flushInterval: config.logging.flushInterval });
  if (config.sites.length === 0) {
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      'no sites configured: give --origin URL or a config file with sites',
    );
  }
  applyHeapProfile(config.node.heap);
  lowerBackgroundThreads(config.node.backgroundNice);
  prepareCacheDir(config.cache.dir);
  const store = new CacheStore({
    dir: config.cache.dir,
    maxSize: config.cache.maxSize,
    chunkSize: config.cache.chunkSize,
    memorySize: config.cache.memorySize,
    memoryObjectSize: config.cache.memoryObjectSize,
    maxVariants: config.cache.maxVariants,
    commitDelayMs: config.cache.commitDelay,
    log,
    now,
    ...(options.decodedBytes !== undefined ? { decodedBytes: options.decodedBytes } : {}),
    ...(options.bodyGraceMs !== undefined ? { bodyGraceMs: options.bodyGraceMs } : {}),
  });
  const metrics = createMetrics();
  store.observeCommits((trigger) => metrics.commitTransactions.labels(trigger).inc());
  if (config.fleet.nats.servers.length === 0) withoutFleetMetrics(metrics);
  metrics.storeCapacity.set(config.cache.maxSize);
  metrics.setMemorySource(() => ({ bytes: store.memory.bytes, bodies: store.memory.bodies }));
  // Every failed attempt at an origin, counted against the origin that failed (failover included).
  // The request's own error is logged once, in its access-log line; each attempt only at debug.
  const onOriginFailure: FailureListener = (origin, error) => {
    metrics.originRequestsBy(origin, error.code).inc();
    log.debug({ origin, code: error.code, detail: errorDetail(error) }, 'origin attempt failed');
  };
  const trusted = createTrustList(config.proxy.trustedProxies);
  // One GeoIP resolver (config.geo) for origin selection and the sites' country rules.
  let geo = new GeoResolver(config.geo);
  let geoLookup = options.geo ?? placeLookup(geo);
  if (geoLookup === undefined && config.sites.some((site) => site.security.countries !== undefined))
    log.warn(
      'country rules configured but no GeoIP lookup (geo.networks or geo.database): every address counts as unknown',
    );
  const workers = options.rateShare === undefined ? 1 : workerCount(config);
  const guards = (site: SiteConfig) => {
    const guard = new SiteGuard(site.security, {
      trusted: config.proxy.trustedProxies.length > 0 ? trusted : undefined,
      geo: geoLookup,
      maxHeaderSize: config.proxy.maxHeaderSize,
      workers,
    });
    options.rateShare?.register(site.name, guard);
    return guard;
  };
  const healthListeners: HealthListener[] = [];
  const ejectionListeners: Array<(origin: string, ms: number) => void> = [];
  const poolListeners: PoolListeners = {
    onFailure: onOriginFailure,
    onAttempt: (origin, outcome) => {
      if (outcome.ejected) {
        for (const listener of ejectionListeners)
          listener(origin.name, origin.ejectedUntil - performance.now());
        metrics.originEjections.labels(origin.name).inc();
        log.warn(
          { origin: origin.name, until: Math.round(origin.ejectedUntil - performance.now()) },
          'origin ejected',
        );
      }
      if (outcome.retried) metrics.originRetries.labels(origin.name).inc();
      // A 5xx answer that was retried never reaches the pipeline's counters: count it here.
      if (outcome.retried && outcome.kind === 'response') {
        metrics.originRequestsBy(origin.name, `${Math.floor(outcome.status / 100)}xx`).inc();
        metrics.originLatency.labels(origin.name).observe(outcome.ms / 1000);
      }
    },
    onBudgetExhausted: (site) => metrics.retryBudgetExhausted.labels(site).inc(),
  };
  const initial = buildSites(config, poolListeners, guards, geo);
  let origins = initial.origins;
  let slowStarts = originSlowStarts(config);
  const retired = new Set<Origin>();
  metrics.setOriginSource(() => {
    const at = performance.now();
    const shown = [...origins.values()];
    // An origin a reload removed drains for a while: shown (state 4, its requests in flight) until closed.
    for (const origin of retired)
      if (origin.state.draining && !origins.has(origin.name) && !shown.some((o) => o.name === origin.name))
        shown.push(origin);
    return shown.map((origin) => ({
      name: origin.name,
      latency: origin.state.latency.at(at),
      pending: origin.state.pending,
      state: ORIGIN_STATUSES.indexOf(origin.state.status(at, slowStarts.get(origin.name) ?? 0)),
    }));
  });
  const applyHealth: HealthListener = (name, verdict, ms) => {
    const origin = origins.get(name);
    if (origin === undefined) return;
    const was = origin.state.probe;
    origin.state.applyProbe(verdict, ms, performance.now());
    if (was !== verdict) log.info({ origin: name, verdict, was }, 'origin health changed');
  };
  const checker =
    (options.healthChecks ?? options.upkeep !== false)
      ? new HealthChecker({
          onResult: (name, verdict, ms) => {
            applyHealth(name, verdict, ms);
            for (const listener of healthListeners) listener(name, verdict, ms);
          },
        })
      : undefined;
  checker?.update(healthTargets(config));
  checker?.start();
  const originEvents: OriginEvents = {
    onHealth: (listener) => healthListeners.push(listener),
    onEjected: (listener) => ejectionListeners.push(listener),
    applyHealth,
    applyEjection: (name, ms) => {
      const origin = origins.get(name);
      if (origin !== undefined) eject(origin.state, performance.now() + ms);
    },
    // A check a reload changed has no verdict of its own yet: the origin keeps the one it had
    // (health.ts), and a worker that starts (all of them, on SIGHUP) is given that one.
    healthSnapshot: () =>
      (checker?.snapshot() ?? []).map(({ name, verdict }) => ({
        name,
        verdict: verdict === 'unknown' ? (origins.get(name)?.state.probe ?? verdict) : verdict,
      })),
  };
  const tagHeaders = config.cache.tagHeaders.map((name) => name.toLowerCase());
  // Targeted fields meant for Strata nodes and tag headers: stored, passed only to child tiers.
  const tierFields = new Set([
    'strata-cdn-cache-control',
    ...(config.cache.passTagHeaders ? [] : tagHeaders),
  ]);
  const stripStored = new Set([
    'surrogate-control',
    'x-request-id', // the node's own id is returned instead
    ...config.proxy.hideResponseHeaders,
  ]);
  const edge: Edge = {
    config,
    store,
    collapse: options.collapse ?? new CollapseTable(config.cache.hitForPass, now),
    sites: initial.sites,
    metrics,
    log,
    access: config.logging.access
      ? new AccessLog({
          format: config.logging.accessFormat,
          file: config.logging.accessFile,
          flushInterval: config.logging.flushInterval,
          log,
        })
      : undefined,
    now,
    trusted,
    name: config.proxy.via,
    loopId: '',
    fence: undefined,
    revalidating: new Set(),
    tagHeaders,
    stripResponse: new Set([...stripStored, ...tierFields]),
    stripStored,
    tierFields,
    collapseTimeoutMs: config.cache.collapseTimeout,
    work: new Set(),
    tunnels: { open: new Set(), pending: new Set(), answering: new Map(), stopping: false },
  };
  // A herd's connections collected while it waits for the origin (scavenger.ts): one collector
  // per process, its time share on the monotonic clock (a wall clock set back would stop it).
  edge.collapse.onHerd ??= herdCollector().herd;
  const evictor = new Evictor(store, {
    maxSize: config.cache.maxSize,
    log,
    onEvict: (count) => metrics.evictions.inc(count),
  });
  /** Sweeps of exited workers' bodies waiting for their grace period (sweepBodiesOf). */
  const sweeps = new Set<() => void>();
  if (options.upkeep !== false) {
    evictor.start();
    evictor
      .sweepOrphans(Date.now() - 1000)
      .catch((error: unknown) => log.error({ err: error }, 'orphan sweep failed'));
  }
  const hold: { bus?: FleetBus } = {};
  const { purge, fanOut } = createPurge(edge, options.upkeep !== false, hold);
  let shared: FleetSections | undefined;
  let self: EdgeNode | undefined;
  const applyShared = (sections: FleetSections | undefined): ApplyOutcome => {
    let next: Config;
    try {
      next = (options.loadShared ?? revalidated(config))(sections);
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
    if (next.sites.length === 0) return { ok: false, reason: 'no sites: the node would answer nothing' };
    const needRestart = self!.reloadSites(next);
    shared = sections;
    options.onSharedConfig?.(next);
    return { ok: true, needRestart };
  };
  // The NATS client (fleet/) is read only when fleet.nats names servers.
  const bus =
    options.upkeep !== false && config.fleet.nats.servers.length > 0
      ? new (await import('./fleet/bus.ts')).FleetBus({
          fleet: config.fleet,
          tierId: config.tiers.id,
          purge,
          store,
          logger: log,
          metrics,
          now,
          retry: config.purge.retry,
          applyConfig: applyShared,
        })
      : undefined;
  hold.bus = bus;
  if (bus) purge.onAppended(() => bus.wake());
  if (config.tiers.secret !== undefined)
    edge.fence = new PurgeFence({
      store,
      log: purge.log,
      nodeId: purge.nodeId,
      sortQuery: (host) => edge.sites.resolve(host)?.sortQuery ?? false,
      keyedTarget: (host, target) => edge.sites.keyedTarget(host, target),
      windowMs: config.tiers.fenceWindow,
      now,
    });
  // Derived from the cache's persisted id (the same in every worker), not the id itself.
  edge.loopId =
    config.tiers.id ??
    createHash('sha256').update(`cdn-loop:${purge.nodeId}`).digest('base64url').slice(0, 12);
  if (options.upkeep !== false) {
    await recoverPurges({
      service: purge,
      store,
      log,
      sortQuery: (host) => edge.sites.resolve(host)?.sortQuery ?? false,
      batchSize: config.purge.batchSize,
      now,
    });
    fanOut?.start();
    bus?.start();
  }
  // The cache key's scheme is the listener's: one pipeline per scheme (docs/tls.md).
  const pipelines = { http: new Pipeline(edge, 'http'), https: new Pipeline(edge, 'https') };
  const tunnels = config.proxy.websockets
    ? { http: tunnelHandler(edge, 'http'), https: tunnelHandler(edge, 'https') }
    : undefined;
  const listeners: Array<Listener | SecureListener> = [];
  const secure: SecureListener[] = [];
  let rotation: NodeJS.Timeout | undefined;
  let admin: Listener | undefined;
  try {
    for (const listener of config.listeners) {
      const started = await startClientListener(
        edge,
        listener,
        pipelines,
        tunnels,
        options.watchCertificates,
      );
      listeners.push(started);
      if ('certificates' in started) secure.push(started);
    }
    // One key set for every context of every TLS listener (workers: the primary's, rotated by it).
    const keys = options.ticketKeys ?? (secure.length > 0 ? newTicketKeys() : undefined);
    if (keys) for (const l of secure) l.setTicketKeys(keys);
    if (secure.length > 0 && options.ticketKeys === undefined) {
      rotation = setInterval(() => {
        const next = newTicketKeys();
        for (const l of secure) l.setTicketKeys(next);
      }, TICKET_ROTATION_MS);
      rotation.unref();
    }
    if (config.admin.enabled)
      admin = await startAdmin({
        config,
        edge,
        evict: () => evictor.runOnce(),
        purge,
        fanOut,
        bus,
        workersWriteFailure: options.workersWriteFailure,
      }).catch((error: unknown) => {
        throw bindFailure('admin listener', config.admin.listen, error);
      });
  } catch (error) {
    await Promise.all(listeners.map((l) => l.close()));
    await fanOut?.stop();
    await bus?.stop();
    await store.close();
    throw error;
  }
  const addresses = listeners.map((l) => formatListen({ host: l.address.address, port: l.address.port }));
  log.info(
    {
      listen: addresses,
      admin: admin ? formatListen({ host: admin.address.address, port: admin.address.port }) : undefined,
      cache: config.cache.dir,
    },
    'edge node started',
  );
  let closing: Promise<void> | undefined;
  self = {
    config,
    store,
    metrics,
    edge,
    addresses,
    adminAddress: admin ? formatListen({ host: admin.address.address, port: admin.address.port }) : undefined,
    purge,
    fanOut,
    bus,
    get sharedSections() {
      return shared;
    },
    evict: () => evictor.runOnce(),
    async sweepBodiesOf(bodyIdPrefix) {
      if (options.upkeep === false) return 0;
      try {
        // Found now, removed once the grace period of the bodies it was to remove is over.
        const found = await evictor.orphansOf(bodyIdPrefix);
        if (found.length === 0) return 0;
        const over = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            sweeps.delete(stop);
            resolve(true);
          }, store.bodyGraceMs);
          timer.unref();
          const stop = () => {
            clearTimeout(timer);
            resolve(false);
          };
          sweeps.add(stop);
        });
        return over ? await evictor.removeChunks(found) : 0;
      } catch (error) {
        log.error({ err: error }, 'sweep of the bodies of an exited worker failed');
        return 0;
      }
    },
    idle: () => idle(edge),
    originEvents,
    secureListeners: secure,
    reloadCertificates: (why) => secure.map((l) => l.reloadCertificates(why)),
    setTicketKeys(keys) {
      for (const l of secure) l.setTicketKeys(keys);
    },
    reopenLogs() {
      edge.access?.reopen();
    },
    reloadSites(next) {
      geo = new GeoResolver(next.geo);
      geoLookup = options.geo ?? placeLookup(geo);
      const built = buildSites(next, poolListeners, guards, geo, origins);
      slowStarts = originSlowStarts(next);
      const targets = healthTargets(next);
      checker?.update(targets);
      // An origin no longer checked drops its old check's verdict: unhealthy, it would stay out for good.
      const checked = new Set(targets.map((target) => target.name));
      for (const [name, origin] of built.origins) if (!checked.has(name)) origin.state.probe = 'unknown';
      for (const [name, origin] of origins) if (!built.origins.has(name)) origin.state.draining = true;
      edge.sites = built.sites;
      for (const origin of origins.values()) retired.add(origin);
      const old = [...origins.values()];
      origins = built.origins;
      const timer = setTimeout(() => {
        for (const origin of old) {
          retired.delete(origin);
          void origin.close();
        }
      }, 60_000);
      timer.unref();
      const changed: string[] = RESTART_SECTIONS.filter(
        (key) => JSON.stringify(next[key]) !== JSON.stringify(config[key]),
      );
      // Read by the primary when it starts its workers (node:cluster fixes it then).
      if (next.node.accept !== config.node.accept) changed.push('node.accept');
      // Applied to this process when it started (a replaced worker takes the new values).
      for (const key of ['heap', 'backgroundNice'] as const)
        if (next.node[key] !== config.node[key]) changed.push(`node.${key}`);
      log.info(
        { sites: next.sites.length, origins: next.origins.length, needRestart: changed },
        'sites and origins reloaded',
      );
      return [...changed];
    },
    close(closeOptions) {
      closing ??= (async () => {
        const deadline = performance.now() + (closeOptions?.drainMs ?? DRAIN_MS);
        edge.tunnels.stopping = true;
        clearInterval(rotation);
        const servers = admin ? [...listeners, admin] : listeners;
        checker?.stop();
        const stopped = Promise.all(servers.map((l) => l.close()));
        if (!(await within(stopped, deadline))) {
          for (const l of servers) l.closeAllConnections();
          // WebSocket tunnels had the drain grace to end on their own; node:http no longer tracks
          // them. A handshake still at its origin is dropped with its client: no tunnel opens now.
          for (const tunnel of edge.tunnels.open) tunnel.close();
          for (const socket of edge.tunnels.pending) socket.destroy();
          await stopped;
        }
        // Handshakes whose connection node:http no longer tracks (pipelined behind an answer; one
        // answered 503 once stopping): they end as an answer, its access line written before the
        // node stops, or as a tunnel (below); connections still open at the end of the grace close.
        const handshakes = () => Promise.all(edge.tunnels.answering.values());
        if (!(await within(handshakes(), deadline)))
          for (const res of edge.tunnels.answering.keys()) res.destroy();
        await within(handshakes(), performance.now() + 2000);
        // The listener counts a connection gone before it has closed: a tunnel's sides (and its
        // access line) close just after. Those still open past the grace are closed.
        const tunnelsDone = () => Promise.all([...edge.tunnels.open].map((tunnel) => tunnel.done));
        if (!(await within(tunnelsDone(), deadline))) for (const tunnel of edge.tunnels.open) tunnel.close();
        await within(tunnelsDone(), performance.now() + 2000);
        const all = () => [...origins.values(), ...retired];
        let destroyed = false;
        if (!(await within(idle(edge), deadline))) {
          log.warn(
            { running: edge.work.size },
            'drain deadline passed: ending origin requests still running',
          );
          destroyed = true;
          await Promise.all(all().map((o) => o.destroy()));
          await within(idle(edge), performance.now() + 2000);
        }
        await fanOut?.stop();
        await bus?.stop();
        await purge.drain();
        for (const stop of sweeps) stop();
        sweeps.clear();
        await evictor.stop();
        if (!destroyed) await Promise.all(all().map((o) => o.close()));
        await store.close();
        log.info('edge node stopped');
        edge.access?.close();
        log.flush?.();
      })();
      return closing;
    },
  };
  return self;
}

/**
 * A library caller's shared-configuration loader (the CLI passes its own, which reads the file
 * again as SIGHUP does): the running configuration with the sections replaced, validated again.
 */
function revalidated(config: Config): (sections: FleetSections | undefined) => Config {
  return (sections) => {
    const result = validateConfig({ ...structuredClone(config), ...structuredClone(sections ?? {}) });
    if ('problems' in result) throw new Error(`invalid configuration:\n${formatProblems(result.problems)}`);
    return result.config;
  };
}

/** The purge service, its metrics, and (in the upkeep process) fan-out and log trimming (`hold`: the bus, set once made). */
function createPurge(
  edge: Edge,
  upkeep: boolean,
  hold: { bus?: FleetBus },
): { purge: PurgeService; fanOut: FanOut | undefined } {
  const { config, metrics } = edge;
  const purge = new PurgeService({
    store: edge.store,
    log: edge.log,
    identity: config.fleet.node ?? config.tiers.id,
    sortQuery: (host) => edge.sites.resolve(host)?.sortQuery ?? false,
    keyedTarget: (host, target) => edge.sites.keyedTarget(host, target),
    batchSize: config.purge.batchSize,
    now: edge.now,
    onFills: (targets) => edge.collapse.purgeFills(targets),
    onPurge: (command, result, forwarded) => {
      const mode = command.soft ? 'soft' : 'hard';
      metrics.purges.labels(mode, forwarded ? 'peer' : 'api').inc();
      metrics.purgedEntries.labels(mode).inc(result.purged);
      metrics.purgeSequence.set(result.sequence);
    },
  });
  if (!upkeep) return { purge, fanOut: undefined };
  const fanOut =
    config.purge.peers.length > 0
      ? new FanOut({
          config: config.purge,
          log: purge.log,
          nodeId: purge.nodeId,
          logger: edge.log,
          now: edge.now,
          onAttempt: (peer, ok) => {
            if (!ok) metrics.purgePeerFailures.labels(peer.url).inc();
            metrics.purgePeerDelivered.labels(peer.url).set(peer.delivered);
            metrics.purgePeerPending.labels(peer.url).set(peer.pending);
          },
        })
      : undefined;
  purge.onAppended(() => {
    fanOut?.wake();
    // Kept until every peer and the bus have them.
    const delivered = Math.min(
      fanOut?.lowestDelivered ?? purge.log.sequence,
      hold.bus?.delivered ?? purge.log.sequence,
    );
    void purge.log
      .retain(config.purge.logSize, delivered)
      .catch((error: unknown) => edge.log.warn({ err: error }, 'purge log trim failed'));
  });
  return { purge, fanOut };
}

/** One client listener: plain HTTP/1.1, or TLS with HTTP/2 and HTTP/1.1 (docs/tls.md). */
async function startClientListener(
  edge: Edge,
  listener: ListenerConfig,
  pipelines: { http: Pipeline; https: Pipeline },
  tunnels: { http: UpgradeHandler; https: UpgradeHandler } | undefined,
  watch: boolean | undefined,
): Promise<Listener | SecureListener> {
  const { config, log } = edge;
  const address = parseListen(listener.listen)!;
  const common = {
    host: address.host,
    port: address.port,
    maxHeaderSize: config.proxy.maxHeaderSize,
    requestTimeout: config.proxy.requestTimeout,
    keepAliveTimeout: config.proxy.keepAliveTimeout,
    maxRequestsPerConnection: config.proxy.maxRequestsPerConnection,
    onClientError: (error: NodeJS.ErrnoException, socket: Socket, status: number | undefined) =>
      logParserRefusal(edge, error, socket as Socket & { encrypted?: boolean }, status),
    cacheName: cacheName(config.proxy.via),
    caps: {
      max: config.proxy.maxConnections,
      perClient: config.proxy.maxConnectionsPerClient,
      onRefused: (cap: string) => edge.metrics.connectionsRefused.labels(cap).inc(),
    },
    connections: {
      depth: config.proxy.pipelineDepth,
      maxQueued: config.proxy.maxQueuedRequests,
      sendBuffer: SEND_BUFFER,
      sendTimeout: config.proxy.sendTimeout,
    },
  };
  const tls = listener.tls;
  if (tls === undefined)
    return startListener({ ...common, onUpgrade: tunnels?.http }, pipelines.http.handle).catch(
      (error: unknown) => {
        throw bindFailure('client listener', listener.listen, error);
      },
    );
  const h2 = config.http2;
  // node:https, node:http2 and the certificate code are read only when a TLS listener is configured.
  const { startSecureListener } = await import('./http/secure-listener.ts');
  return startSecureListener(
    {
      ...common,
      onUpgrade: tunnels?.https,
      certificate: { cert: tls.cert, key: tls.key },
      sni: tls.sni,
      http2: listener.http2 ?? true,
      limits: { ...h2, maxSessionMemory: Math.max(1, Math.ceil(h2.maxSessionMemory / 1024 ** 2)) },
      watch: watch ?? true,
      onReload: (report, why) => {
        for (const kept of report.kept)
          log.error(
            { cert: kept.cert, reason: kept.reason, why },
            'certificate not reloaded: the previous one stays in use',
          );
        log.info({ reloaded: report.reloaded, kept: report.kept.length, why }, 'certificates reloaded');
      },
      onCertificateFailure: (servername, problem) =>
        log.error(
          { servername, cert: problem.cert, reason: problem.reason },
          'certificate not loaded: the default one answers this name',
        ),
      onCertificateOutOfDate: (problem) =>
        log.warn(
          { cert: problem.cert, reason: problem.reason },
          'certificate out of date: clients that check it refuse the connection',
        ),
      onRapidReset: (client) =>
        log.warn({ client }, 'HTTP/2 connection closed: too many cancelled streams (rapid reset)'),
    },
    pipelines.https.handle,
  ).catch((error: unknown) => {
    if (BIND_FAILURES[(error as NodeJS.ErrnoException).code ?? ''])
      throw bindFailure('TLS listener', listener.listen, error);
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      `listener ${listener.listen}: certificate ${tls.cert} / key ${tls.key} not usable: ${(error as Error).message}`,
      { cause: error },
    );
  });
}

/** Why a port could not be bound, as an operator reads it. */
const BIND_FAILURES: Record<string, string> = {
  EADDRINUSE: 'address already in use (another process listens there)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'no such address on this machine',
};

/** A listener that could not bind, named with its address; other errors pass as they are. */
function bindFailure(what: string, listen: string, error: unknown): unknown {
  const reason = BIND_FAILURES[(error as NodeJS.ErrnoException).code ?? ''];
  if (reason === undefined) return error;
  return new EdgeError('EDGE_ERR_STARTUP', `${what} ${listen}: ${reason}`, { cause: error });
}

/** Until no fill or revalidation runs; their commits go at once meanwhile (a drain, a test). */
async function idle(edge: Edge): Promise<void> {
  const release = edge.store.holdCommits();
  try {
    for (let round = 0; round < 100 && edge.work.size > 0; round++) await Promise.allSettled([...edge.work]);
  } finally {
    release();
  }
}

/**
 * Origins and sites from a configuration. An origin that was already running under the same
 * name and URL keeps its selection state (latency, ejection, health) across a reload.
 */
function buildSites(
  config: Config,
  listeners: PoolListeners,
  guards: (site: SiteConfig) => SiteGuard,
  geo: GeoResolver,
  previous?: ReadonlyMap<string, Origin>,
): { origins: Map<string, Origin>; sites: SiteTable } {
  // A site with a choice of origins should not wait 5 s to give up on one (docs/origins.md).
  const shared = new Set<string>();
  for (const site of config.sites) {
    const names = [...site.origins, ...backupOrigins(config, site)];
    if (names.length > 1) for (const name of names) shared.add(name);
  }
  const origins = new Map(
    config.origins.map((origin) => {
      const old = previous?.get(origin.name);
      const connectTimeout = origin.connectTimeout ?? (shared.has(origin.name) ? 1000 : 5000);
      const state = old !== undefined && old.config.url === origin.url ? old.state : undefined;
      return [origin.name, new Origin({ ...origin, connectTimeout }, state)];
    }),
  );
  const trusted = createTrustList(config.proxy.trustedProxies);
  const sites = new SiteTable(
    config.sites,
    (site) =>
      new OriginPool(
        site.origins.map((name) => origins.get(name)!),
        {
          policy: site,
          backups: backupOrigins(config, site).map((name) => origins.get(name)!),
          nodeRegion: config.node.region,
          geo: geo.enabled ? geo : undefined,
          trusted,
          onFailure: listeners.onFailure,
          onAttempt: listeners.onAttempt,
          onBudgetExhausted: () => listeners.onBudgetExhausted(site.name),
        },
      ),
    guards,
    geo.enabled ? (address) => geo.regionsOf(address) : undefined,
  );
  return { origins, sites };
}

/**
 * Each origin's slow start as the gauges show it: the longest `slowStart` of the sites naming it
 * (in `origins` or `backup`), so `strata_origin_state` reads 1 while any of them still ramps it up.
 */
function originSlowStarts(config: Config): Map<string, number> {
  const out = new Map<string, number>();
  for (const site of config.sites)
    for (const name of [...site.origins, ...backupOrigins(config, site)])
      out.set(name, Math.max(out.get(name) ?? 0, site.slowStart));
  return out;
}

/**
 * The origins to probe: each origin of a site with a healthCheck, with the first such site's check.
 * Probes carry the check's `host`, else the origin's hostHeader; a parent tier, else, the site's first
 * host name that is no wildcard: it is a node that answers the hosts of its sites only, and its own
 * address as Host gets a 421.
 */
function healthTargets(config: Config): HealthTarget[] {
  const targets = new Map<string, HealthTarget>();
  for (const site of config.sites) {
    if (site.healthCheck === undefined) continue;
    const siteHost = site.hosts.find((host) => !host.startsWith('*'));
    for (const name of [...site.origins, ...backupOrigins(config, site)]) {
      const origin = config.origins.find((o) => o.name === name);
      if (origin === undefined || targets.has(name)) continue;
      const tls = origin.url.toLowerCase().startsWith('https:') ? originTls(origin) : undefined;
      targets.set(name, {
        name,
        url: origin.url,
        hostHeader:
          site.healthCheck.host ?? origin.hostHeader ?? (origin.tier === 'parent' ? siteHost : undefined),
        tls,
        check: site.healthCheck,
      });
    }
  }
  return [...targets.values()];
}

interface PoolListeners {
  onFailure: FailureListener;
  onAttempt: AttemptListener;
  onBudgetExhausted: (site: string) => void;
}
