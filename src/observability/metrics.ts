/**
 * Prometheus metrics, declared in one table with a one-line description each.
 * Names are prefixed `strata_`; the process and runtime metrics are prom-client's defaults
 * (`process_*`, `nodejs_*`).
 */
import { readFileSync } from 'node:fs';
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

import { CounterTallies, type Tally, TallyHistogram } from './tally.ts';

export type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** The package version, read once. */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Status classes as label values: a fixed set, whatever status a response carries. */
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;

/** Index into STATUS_CLASSES. */
function statusClass(status: number): number {
  const index = Math.floor(status / 100) - 1;
  return index >= 0 && index < 5 ? index : 5;
}

/** What the origin gauges read when scraped: each origin's selection state in this process. */
export interface OriginGaugeSource {
  name: string;
  latency: number | undefined;
  pending: number;
  /** Index into ORIGIN_STATUSES (src/origin/state.ts): 0 healthy, 1 slow-start, 2 ejected, 3 unhealthy, 4 draining. */
  state: number;
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (promtool refuses them); their per-type series stay.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name);
  let originSource: () => Iterable<OriginGaugeSource> = () => [];
  let memorySource: () => { bytes: number; bodies: number } = () => ({ bytes: 0, bodies: 0 });
  let gather = async () => (await registry.getMetricsAsJSON()) as MetricJson[];
  // The per-request counts: plain numbers, passed to their counters when scraped (tally.ts).
  const requestTallies = new CounterTallies();
  const lookupTallies = new CounterTallies();
  const bytesTallies = new CounterTallies();
  const originTallies = new CounterTallies();
  const originChildren = new Map<string, Map<string, Tally>>();
  const insertTallies = new CounterTallies();
  const metrics = {
    registry,
    buildInfo: new Gauge({
      name: 'strata_build_info',
      help: 'Always 1; the labels name the running build (version, Node.js version).',
      labelNames: ['version', 'node'] as const,
      registers: [registry],
      aggregator: 'first',
    }),
    requests: new Counter({
      name: 'strata_requests_total',
      help: 'Client requests answered, by site (empty: no site matched) and status class (2xx, 4xx, ...).',
      labelNames: ['site', 'status'] as const,
      registers: [registry],
      collect: () => requestTallies.flush(),
    }),
    requestDuration: new TallyHistogram({
      name: 'strata_request_duration_seconds',
      help: 'Time from a client request’s arrival until its response was written, by cache outcome (hit, miss, ...).',
      label: 'cache',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registry,
    }),
    lookups: new Counter({
      name: 'strata_cache_lookups_total',
      help: 'Cache lookups by result (hit, miss, stale, revalidated, collapsed, pass, error).',
      labelNames: ['result'] as const,
      registers: [registry],
      collect: () => lookupTallies.flush(),
    }),
    inserts: new Counter({
      name: 'strata_cache_inserts_total',
      help: 'Responses considered for storing, by outcome (stored, updated, not-storable reasons, aborted).',
      labelNames: ['outcome'] as const,
      registers: [registry],
      collect: () => insertTallies.flush(),
    }),
    commitTransactions: new Counter({
      name: 'strata_cache_commit_transactions_total',
      help: 'LMDB write transactions that committed stored responses, by what started them: delay (cache.commitDelay ran out), full (256 gathered), waited (a request waited for a commit, or a drain), at-once (cache.commitDelay 0). Stored responses per transaction: strata_cache_inserts_total{outcome="stored"} over the sum.',
      labelNames: ['trigger'] as const,
      registers: [registry],
    }),
    bytesServed: new Counter({
      name: 'strata_bytes_served_total',
      help: 'Body bytes sent to clients, by source (cache or origin).',
      labelNames: ['source'] as const,
      registers: [registry],
      collect: () => bytesTallies.flush(),
    }),
    originRequests: new Counter({
      name: 'strata_origin_requests_total',
      help: 'Requests sent to origins, by origin and outcome (status class or error code).',
      labelNames: ['origin', 'outcome'] as const,
      registers: [registry],
      collect: () => originTallies.flush(),
    }),
    originLatency: new TallyHistogram({
      name: 'strata_origin_response_seconds',
      help: 'Time from sending a request to an origin until its response headers arrived.',
      label: 'origin',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registry,
    }),
    originLatencyEwma: new Gauge({
      name: 'strata_origin_latency_ewma_seconds',
      help: 'EWMA of time to response headers per origin, failures penalised, decaying while idle, as selection sees it.',
      labelNames: ['origin'] as const,
      registers: [registry],
      // With workers, each process's estimate of one origin: their mean, not their sum.
      aggregator: 'average',
      collect() {
        this.reset();
        for (const origin of originSource())
          if (origin.latency !== undefined) this.labels(origin.name).set(origin.latency / 1000);
      },
    }),
    originPending: new Gauge({
      name: 'strata_origin_pending_requests',
      help: 'Requests in flight per origin (this process).',
      labelNames: ['origin'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const origin of originSource()) this.labels(origin.name).set(origin.pending);
      },
    }),
    originState: new Gauge({
      name: 'strata_origin_state',
      help: 'Selection state per origin: 0 healthy, 1 slow-start, 2 ejected, 3 unhealthy (health check), 4 draining.',
      labelNames: ['origin'] as const,
      registers: [registry],
      // With workers, the worst state any process has the origin in: a sum of two workers'
      // "ejected" (2 + 2) read as "draining".
      aggregator: 'max',
      collect() {
        this.reset();
        for (const origin of originSource()) this.labels(origin.name).set(origin.state);
      },
    }),
    originEjections: new Counter({
      name: 'strata_origin_ejections_total',
      help: 'Passive ejections per origin (consecutive failures, or a 503 with Retry-After).',
      labelNames: ['origin'] as const,
      registers: [registry],
    }),
    originRetries: new Counter({
      name: 'strata_origin_retries_total',
      help: 'Requests retried on another origin after a retryable failure of this one.',
      labelNames: ['origin'] as const,
      registers: [registry],
    }),
    retryBudgetExhausted: new Counter({
      name: 'strata_origin_retry_budget_exhausted_total',
      help: 'Retries refused because the site’s retry budget was spent.',
      labelNames: ['site'] as const,
      registers: [registry],
    }),
    collapsed: new Counter({
      name: 'strata_collapsed_waiters_total',
      help: 'Requests that followed another request’s origin fetch instead of making their own.',
      registers: [registry],
    }),
    evictions: new Counter({
      name: 'strata_evictions_total',
      help: 'Variants evicted to keep the store under cache.maxSize.',
      registers: [registry],
    }),
    purges: new Counter({
      name: 'strata_purges_total',
      help: 'Purges applied on this node, by mode (soft or hard) and by who asked (api or peer).',
      labelNames: ['mode', 'source'] as const,
      registers: [registry],
    }),
    purgedEntries: new Counter({
      name: 'strata_purged_entries_total',
      help: 'Variants removed (hard) or marked stale (soft) by purges.',
      labelNames: ['mode'] as const,
      registers: [registry],
    }),
    purgeSequence: new Gauge({
      name: 'strata_purge_sequence',
      help: 'Last sequence in this node’s purge log.',
      registers: [registry],
    }),
    purgePeerDelivered: new Gauge({
      name: 'strata_purge_peer_delivered_sequence',
      help: 'Last purge sequence each peer acknowledged.',
      labelNames: ['peer'] as const,
      registers: [registry],
    }),
    purgePeerPending: new Gauge({
      name: 'strata_purge_peer_pending',
      help: 'Purges in the log a peer has not acknowledged yet.',
      labelNames: ['peer'] as const,
      registers: [registry],
    }),
    fenceBypasses: new Counter({
      name: 'strata_tier_fence_bypasses_total',
      help: 'Requests of child tiers that named a purge this node had not applied yet, sent to the origin past the cache (docs/tiers.md).',
      registers: [registry],
    }),
    purgePeerFailures: new Counter({
      name: 'strata_purge_peer_failures_total',
      help: 'Failed purge deliveries to a peer (each is retried).',
      labelNames: ['peer'] as const,
      registers: [registry],
    }),
    fleetConnected: new Gauge({
      name: 'strata_fleet_bus_connected',
      help: 'Whether the node is connected to the NATS purge bus (1) or not (0); absent without fleet.nats.',
      registers: [registry],
    }),
    fleetPublished: new Counter({
      name: 'strata_fleet_purges_published_total',
      help: 'Purges accepted on this node and acknowledged by the purge bus stream.',
      registers: [registry],
    }),
    fleetPublishPending: new Gauge({
      name: 'strata_fleet_publish_pending',
      help: 'Purge-log entries the purge bus has not acknowledged yet (accepted while the bus was down).',
      registers: [registry],
    }),
    fleetConsumed: new Counter({
      name: 'strata_fleet_purges_consumed_total',
      help: 'Purges read from the purge bus, by outcome: applied, own (published here, already applied), duplicate, invalid.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    fleetPurgeLag: new Histogram({
      name: 'strata_fleet_purge_lag_seconds',
      help: 'From a purge accepted at its node to applied here through the bus (clocks of two machines).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 5, 30, 300],
      registers: [registry],
    }),
    fleetConfigUpdates: new Counter({
      name: 'strata_fleet_config_updates_total',
      help: 'Shared configuration values seen in the KV bucket, by outcome (applied or rejected).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    fleetConsuming: new Gauge({
      name: 'strata_fleet_consuming',
      help: 'Whether this node consumes the purge bus (1) or not (0: another live node holds its fleet.node, or the bus is not set up yet); absent without fleet.nats.',
      registers: [registry],
    }),
    fleetConfigRevision: new Gauge({
      name: 'strata_fleet_config_revision',
      help: 'KV revision of the shared configuration in force (0: the node’s own file).',
      registers: [registry],
    }),
    security: new Counter({
      name: 'strata_security_actions_total',
      help: 'Security rules that acted, by rule (deny, country, block, url-length, header-count, header-bytes, body-size, rate-requests, rate-origin, poison-suspect, deception, fat-request) and action (refused, not-stored, passed).',
      labelNames: ['rule', 'action'] as const,
      registers: [registry],
    }),
    connectionsRefused: new Counter({
      name: 'strata_connections_refused_total',
      help: 'Client connections closed on accept for a cap (proxy.maxConnections: max, proxy.maxConnectionsPerClient: per-client).',
      labelNames: ['cap'] as const,
      registers: [registry],
    }),
    tunnelsOpen: new Gauge({
      name: 'strata_tunnels_open',
      help: 'WebSocket tunnels open (bounded by proxy.maxTunnels per process), summed over workers.',
      registers: [registry],
    }),
    tunnels: new Counter({
      name: 'strata_tunnels_total',
      help: 'WebSocket handshakes, by outcome: opened (the origin answered 101), declined (it answered anything else), failed (no origin answered), abandoned (the client left before the origin answered), refused (proxy.maxTunnels reached).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    tunnelBytes: new Counter({
      name: 'strata_tunnel_bytes_total',
      help: 'Bytes carried by closed WebSocket tunnels after the 101, by direction (to-origin, to-client).',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
    compressions: new Counter({
      name: 'strata_compressions_total',
      help: 'Stored bodies compressed into a coding (gzip, br, zstd): by the request that first asks for it, never on a hit of a stored coding (docs/compression.md).',
      labelNames: ['coding'] as const,
      registers: [registry],
    }),
    compressionBytesSaved: new Counter({
      name: 'strata_compression_bytes_saved_total',
      help: 'Bytes a stored coding is smaller than the identity body it was made from, by coding.',
      labelNames: ['coding'] as const,
      registers: [registry],
    }),
    compressionQueue: new Gauge({
      name: 'strata_compression_queue',
      help: 'Compressions waiting or running in the libuv pool (bounded by compression.queue).',
      registers: [registry],
    }),
    storeBytes: new Gauge({
      name: 'strata_store_bytes',
      help: 'Bytes accounted to stored entries.',
      registers: [registry],
    }),
    storeEntries: new Gauge({
      name: 'strata_store_entries',
      help: 'Variants stored (complete entries, each Vary variant counted).',
      registers: [registry],
    }),
    memoryTierBytes: new Gauge({
      name: 'strata_memory_tier_bytes',
      help: 'Bytes of hot bodies held in the in-memory tier (cache.memorySize per process), summed over workers.',
      registers: [registry],
      collect() {
        this.set(memorySource().bytes);
      },
    }),
    memoryTierBodies: new Gauge({
      name: 'strata_memory_tier_bodies',
      help: 'Hot bodies held in the in-memory tier, summed over workers.',
      registers: [registry],
      collect() {
        this.set(memorySource().bodies);
      },
    }),
    storeCapacity: new Gauge({
      name: 'strata_store_capacity_bytes',
      help: 'Configured cache.maxSize.',
      registers: [registry],
    }),
  };
  requestTallies.attach(metrics.requests);
  lookupTallies.attach(metrics.lookups);
  bytesTallies.attach(metrics.bytesServed);
  originTallies.attach(metrics.originRequests);
  insertTallies.attach(metrics.inserts);
  // Label children bound once: labels() hashes its arguments on every call.
  const securityChildren = new Map<string, ReturnType<typeof metrics.security.labels>>();
  // Per site, one tally per status class (no string built per request).
  const requestChildren = new Map<string, Tally[]>();
  metrics.buildInfo.labels(VERSION, process.versions.node).set(1);
  return {
    ...metrics,
    /** Every metric as JSON: this process's, or the node's summed over workers (see setGather). */
    gather: () => gather(),
    /** The primary of a node with workers: gather answers the sum of every process. */
    setGather(fn: () => Promise<MetricJson[]>) {
      gather = fn;
    },
    /** Sets what the origin gauges read at scrape time. */
    setOriginSource(source: () => Iterable<OriginGaugeSource>) {
      originSource = source;
    },
    /** Sets what the memory tier's gauges read at scrape time. */
    setMemorySource(source: () => { bytes: number; bodies: number }) {
      memorySource = source;
    },
    lookupsBy(result: string): Tally {
      return lookupTallies.get(result);
    },
    securityBy(rule: string, action: string) {
      const name = `${rule} ${action}`;
      let child = securityChildren.get(name);
      if (child === undefined) {
        child = metrics.security.labels(rule, action);
        securityChildren.set(name, child);
      }
      return child;
    },
    requestsBy(site: string, status: number) {
      let children = requestChildren.get(site);
      if (children === undefined) {
        children = STATUS_CLASSES.map((name) => requestTallies.get(`${site}\u0000${name}`, [site, name]));
        requestChildren.set(site, children);
      }
      return children[statusClass(status)]!;
    },
    durationBy(cache: string) {
      return metrics.requestDuration.labels(cache);
    },
    bytesBy(source: string): Tally {
      return bytesTallies.get(source);
    },
    /** Responses considered for storing, by outcome (`ctx.insert`). */
    insertsBy(outcome: string): Tally {
      return insertTallies.get(outcome);
    },
    /** Requests sent to an origin, by outcome (a status class such as 2xx, or an error code). */
    originRequestsBy(origin: string, outcome: string): Tally {
      // By origin, then outcome: a key joined on every miss and pass was hashed anew each time.
      let byOutcome = originChildren.get(origin);
      if (byOutcome === undefined) {
        byOutcome = new Map();
        originChildren.set(origin, byOutcome);
      }
      let tally = byOutcome.get(outcome);
      if (tally === undefined) {
        tally = originTallies.get(`${origin}\u0000${outcome}`, [origin, outcome]);
        byOutcome.set(outcome, tally);
      }
      return tally;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * A node without fleet.nats reports no fleet metrics (docs/admin-api.md): a
 * `strata_fleet_bus_connected 0` read as a bus that is down. The metric objects stay,
 * unregistered, for code that counts regardless.
 */
export function withoutFleetMetrics(metrics: Metrics): void {
  for (const metric of metrics.registry.getMetricsAsArray())
    if (metric.name.startsWith('strata_fleet_')) metrics.registry.removeSingleMetric(metric.name);
}
