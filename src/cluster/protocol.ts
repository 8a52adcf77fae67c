/**
 * Messages between the primary and its workers over the cluster IPC channel. Every message
 * carries `strata` (its type) so other users of the channel (prom-client, node:cluster
 * internals) are told apart.
 */
import type { Config } from '../config/schema.ts';

/** A worker asks for the node-wide lock on a key (one origin fetch per cold key per node). */
export interface AcquireMessage {
  strata: 'acquire';
  /** Request id, unique within the worker. */
  id: number;
  key: string;
  /** False: answer 'busy' at once when another request holds the lock. */
  wait: boolean;
}

/** The worker gave up waiting (timeout); a lock it was granted meanwhile is released as failed. */
export interface CancelMessage {
  strata: 'cancel';
  id: number;
}

/**
 * The lock holder is done: 'done' (the fill ended: committed or abandoned — look again),
 * 'failed' (no response to share: elect a new leader), 'uncacheable' (hit-for-pass).
 */
export interface ReleaseMessage {
  strata: 'release';
  id: number;
  result: 'done' | 'failed' | 'uncacheable';
}

export type LockVerdict = 'lead' | 'look-again' | 'uncacheable' | 'busy';

export interface VerdictMessage {
  strata: 'verdict';
  id: number;
  verdict: LockVerdict;
}

/** The worker's listeners are bound: it takes traffic. */
export interface ReadyMessage {
  strata: 'ready';
  addresses: string[];
}

/** Drain in-flight requests, then exit 0. */
export interface ShutdownMessage {
  strata: 'shutdown';
}

export interface MetricsRequestMessage {
  strata: 'metrics?';
  id: number;
}

export interface MetricsReplyMessage {
  strata: 'metrics';
  id: number;
  /** registry.getMetricsAsJSON() of the worker. */
  metrics: unknown[];
}

export type WorkerMessage =
  | AcquireMessage
  | CancelMessage
  | ReleaseMessage
  | ReadyMessage
  | MetricsReplyMessage;
export type PrimaryMessage = VerdictMessage | ShutdownMessage | MetricsRequestMessage;

/** Environment variable carrying the worker's config (JSON) from the primary. */
export const CONFIG_ENV = 'STRATA_WORKER_CONFIG';

export function isStrataMessage<T extends { strata: string }>(message: unknown): message is T {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { strata?: unknown }).strata === 'string'
  );
}

/** The config a worker runs: the node's, without the admin listener (the primary runs it). */
export function workerConfig(config: Config): Config {
  return { ...config, admin: { ...config.admin, enabled: false } };
}
