/**
 * What /stats shows of a site's pool: each origin's state as selection sees it, and the order
 * (with why) in which a request from the node's region would try the origins now.
 */
import type { OutlierConfig, RetryConfig } from '../config/schema.ts';
import { type ChoiceReason, latencyCosts, type OriginSelector, type SelectionMode } from './selection.ts';
import type { OriginStatus, ProbeVerdict } from './state.ts';

/** How a site's pool chooses and retries (from the site's configuration). */
export interface PoolPolicy {
  selection: SelectionMode;
  prefer: 'node-region' | 'client-region' | 'none';
  retry: RetryConfig;
  outlier: OutlierConfig;
  slowStart: number;
}

export interface PoolView {
  selection: SelectionMode;
  prefer: PoolPolicy['prefer'];
  order: Array<{ origin: string; reason: ChoiceReason }>;
  retryBudgetExhausted: number;
  origins: Array<{
    name: string;
    backup: boolean;
    region: string | undefined;
    weight: number;
    state: OriginStatus;
    /** The latency estimate selection uses now (ms); null before the origin's first answer or check. */
    latencyMs: number | null;
    cost: number;
    pending: number;
    maxConnections: number;
    consecutiveFailures: number;
    ejections: number;
    ejectedForMs: number;
    healthCheck: ProbeVerdict;
    retries: number;
  }>;
}

export function describePool(
  selector: OriginSelector,
  policy: PoolPolicy,
  nodeRegion: string | undefined,
  retryBudgetExhausted: number,
): PoolView {
  const now = selector.now();
  const members = selector.members;
  const iter = selector.iter({ region: policy.prefer === 'none' ? undefined : nodeRegion });
  const order: PoolView['order'] = [];
  const rotation = selector.rotation.save(); // looking must not move round robin on
  for (let origin = iter.next(); origin !== undefined; origin = iter.next())
    order.push({ origin: origin.name, reason: iter.reason });
  selector.rotation.restore(rotation);
  const all = [...members, ...selector.backups];
  const costs = latencyCosts(all, now, policy.slowStart);
  return {
    selection: policy.selection,
    prefer: policy.prefer,
    order,
    retryBudgetExhausted,
    origins: all.map((state) => ({
      name: state.name,
      backup: !members.includes(state),
      region: state.traits.region,
      weight: state.traits.weight,
      state: state.status(now, policy.slowStart),
      latencyMs: roundTenth(state.latency.at(now)) ?? null,
      cost: Math.round(costs.get(state)! * 10) / 10,
      pending: state.pending,
      maxConnections: state.traits.maxConnections,
      consecutiveFailures: state.consecutiveFailures,
      ejections: state.ejections,
      ejectedForMs: state.ejected(now) ? Math.round(state.ejectedUntil - now) : 0,
      healthCheck: state.probe,
      retries: state.retries,
    })),
  };
}

function roundTenth(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 10) / 10;
}
