/**
 * The traffic section of /stats: running totals since start, read from the metrics (with
 * workers, summed over every process as /metrics is). A live view turns two of them into
 * rates (`strata top`).
 */
import type { MetricJson } from '../observability/metrics.ts';

export interface TrafficView {
  /** Client requests answered. */
  requests: number;
  /** Requests by status class ('2xx', '4xx', ...). */
  status: Record<string, number>;
  /** Lookups by result ('hit', 'miss', 'pass', ...). */
  lookups: Record<string, number>;
  /** Body bytes sent to clients, by source. */
  bytes: { cache: number; origin: number };
  /** Requests sent to origins (every attempt). */
  originRequests: number;
  /** Purges applied, and the variants they removed or marked stale. */
  purges: number;
  purgedEntries: number;
}

/** Sums of one metric's samples, grouped by one label ('' for all). */
function sumBy(metrics: readonly MetricJson[], name: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  const metric = metrics.find((m) => m.name === name);
  for (const sample of metric?.values ?? []) {
    const key = label === '' ? '' : String(sample.labels[label] ?? '');
    sums[key] = (sums[key] ?? 0) + sample.value;
  }
  return sums;
}

function total(metrics: readonly MetricJson[], name: string): number {
  return sumBy(metrics, name, '')[''] ?? 0;
}

export function trafficView(metrics: readonly MetricJson[]): TrafficView {
  const bytes = sumBy(metrics, 'strata_bytes_served_total', 'source');
  return {
    requests: total(metrics, 'strata_requests_total'),
    status: sumBy(metrics, 'strata_requests_total', 'status'),
    lookups: sumBy(metrics, 'strata_cache_lookups_total', 'result'),
    bytes: { cache: bytes.cache ?? 0, origin: bytes.origin ?? 0 },
    originRequests: total(metrics, 'strata_origin_requests_total'),
    purges: total(metrics, 'strata_purges_total'),
    purgedEntries: total(metrics, 'strata_purged_entries_total'),
  };
}

/** The compression section of /stats: codings made and bytes they save, summed like traffic. */
export interface CompressionView {
  /** Stored bodies compressed, by coding (never on a hit of a stored coding). */
  compressions: Record<string, number>;
  /** Bytes the stored codings are smaller than their identity bodies, by coding. */
  bytesSaved: Record<string, number>;
  /** Compressions waiting or running now. */
  queue: number;
}

export function compressionView(metrics: readonly MetricJson[]): CompressionView {
  return {
    compressions: sumBy(metrics, 'strata_compressions_total', 'coding'),
    bytesSaved: sumBy(metrics, 'strata_compression_bytes_saved_total', 'coding'),
    queue: total(metrics, 'strata_compression_queue'),
  };
}

export interface MemoryView {
  /** Bytes of hot bodies in the in-memory tiers (each process's bounded by cache.memorySize). */
  memoryBytes: number;
  /** Bodies held there. */
  memoryBodies: number;
}

/** The memory tiers, summed over the processes that serve (metrics aggregate every worker). */
export function memoryView(metrics: readonly MetricJson[]): MemoryView {
  return {
    memoryBytes: total(metrics, 'strata_memory_tier_bytes'),
    memoryBodies: total(metrics, 'strata_memory_tier_bodies'),
  };
}
