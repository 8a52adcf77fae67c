/**
 * Prometheus metrics, declared in one table with a one-line description each.
 * Names are prefixed `strata_`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    lookups: new Counter({
      name: 'strata_cache_lookups_total',
      help: 'Cache lookups by result (hit, miss, stale, revalidated, collapsed, pass, error).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    inserts: new Counter({
      name: 'strata_cache_inserts_total',
      help: 'Responses considered for storing, by outcome (stored, updated, not-storable reasons, aborted).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    bytesServed: new Counter({
      name: 'strata_bytes_served_total',
      help: 'Body bytes sent to clients, by source (cache or origin).',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    originRequests: new Counter({
      name: 'strata_origin_requests_total',
      help: 'Requests sent to origins, by origin and outcome (status class or error code).',
      labelNames: ['origin', 'outcome'] as const,
      registers: [registry],
    }),
    originLatency: new Histogram({
      name: 'strata_origin_response_seconds',
      help: 'Time from sending a request to an origin until its response headers arrived.',
      labelNames: ['origin'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
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
    storeBytes: new Gauge({
      name: 'strata_store_bytes',
      help: 'Bytes accounted to stored entries.',
      registers: [registry],
    }),
    storeCapacity: new Gauge({
      name: 'strata_store_capacity_bytes',
      help: 'Configured cache.maxSize.',
      registers: [registry],
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
