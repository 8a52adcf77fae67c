/**
 * Counter assertions in the style of varnishtest's `-expect counter == N`: take a snapshot of a
 * node's metrics, do something, and read what changed, by `name{label="value",...}`.
 */
import type { Registry } from 'prom-client';

export type MetricSnapshot = ReadonlyMap<string, number>;

/** Every sample of every counter and gauge in the registry, keyed `name{a="x",b="y"}` (labels sorted). */
export async function snapshot(registry: Registry): Promise<MetricSnapshot> {
  const samples = new Map<string, number>();
  for (const metric of await registry.getMetricsAsJSON()) {
    // prom-client's JSON carries the type as its text ('counter', 'gauge', ...).
    const type = String(metric.type);
    if (type !== 'counter' && type !== 'gauge') continue;
    // A measured latency, different on every run: asserted by the tests that are about it.
    if (metric.name === 'strata_origin_latency_ewma_seconds') continue;
    // The process and runtime metrics (process_*, nodejs_*) move on their own.
    if (!metric.name.startsWith('strata_')) continue;
    for (const value of metric.values)
      samples.set(sampleName(metric.name, value.labels as Record<string, string | number>), value.value);
  }
  return samples;
}

export function sampleName(name: string, labels: Readonly<Record<string, string | number>> = {}): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((key) => `${key}="${labels[key]}"`).join(',')}}`;
}

/** Records a snapshot now; `delta()` later answers what changed since, by sample name. */
export async function metricsDelta(registry: Registry): Promise<{
  delta(): Promise<Record<string, number>>;
}> {
  const before = await snapshot(registry);
  return {
    async delta() {
      const after = await snapshot(registry);
      const changes: Record<string, number> = {};
      for (const [name, value] of after) {
        const change = value - (before.get(name) ?? 0);
        if (change !== 0) changes[name] = change;
      }
      return changes;
    },
  };
}
