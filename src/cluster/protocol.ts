/**
 * Messages between the primary and its workers over the cluster IPC channel. Every message
 * carries `strata` (its type) so other users of the channel (prom-client, node:cluster
 * internals) are told apart.
 */
import type { FillPurge } from '../cache/collapse.ts';
import type { StoredFreshness } from '../cache/policy/reuse.ts';
import type { Config } from '../config/schema.ts';
import type { RateCounts, RateOver } from '../security/rate-share.ts';

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
 * 'failed' (no response to share: elect a new leader), 'uncacheable' (hit-for-pass), 'refused'
 * (its client was refused, a 4xx or 508 about it: the waiters fetch on their own and store, no
 * hit-for-pass). `chunks`: the announced fill ended with its whole body in LMDB, in this many chunks.
 */
export interface ReleaseMessage {
  strata: 'release';
  id: number;
  result: 'done' | 'failed' | 'uncacheable' | 'refused';
  chunks?: number;
}

/**
 * What a worker reading another worker's fill needs: where its chunks are (`bodyId`), what to
 * answer before the body (status, the header list every reader adds its own Cache-Status to),
 * which variant it is, and the freshness a follower checks before it joins. Never the body.
 */
export interface FillAnnouncement {
  bodyId: string;
  status: number;
  headers: string[];
  vary: string[];
  secondaryKey: string;
  freshness: StoredFreshness;
  /** The response's tags, so a tag purge finds the fill. */
  tags?: readonly string[];
}

/** The lock holder's response is being stored: waiters may read its chunks as they commit. */
export interface AnnounceMessage {
  strata: 'announce';
  id: number;
  fill: FillAnnouncement;
  /** Chunks already committed. */
  committed: number;
}

/**
 * Chunks [0, committed) of a fill are in LMDB: from the lock holder to the primary, and from
 * the primary to every worker reading that fill (`id` is then the reader's request id).
 */
export interface CommittedMessage {
  strata: 'committed';
  id: number;
  committed: number;
}

/**
 * 'look-again': the holder's fetch ended (stored, or nothing to share); 'failed': it failed —
 * look again and compete, counted as a failed leadership (a failing origin's waiters are
 * answered after a few in a row); 'refused': the holder's client was refused (a 4xx or 508
 * about it, not the key): fetch on your own and store what may be stored.
 */
export type LockVerdict = 'lead' | 'look-again' | 'failed' | 'uncacheable' | 'refused' | 'busy';

export interface VerdictMessage {
  strata: 'verdict';
  id: number;
  verdict: LockVerdict;
}

/** To a waiter: the lock holder's fill can be read from LMDB as it is committed. */
export interface FillMessage {
  strata: 'fill';
  id: number;
  fill: FillAnnouncement;
  committed: number;
}

/**
 * To a worker reading a fill: it ended. `chunks` set: the whole body is in LMDB, in that many
 * chunks; unset: it failed, and responses reading it must be cut short — but with `exited`
 * (the worker writing it exited), a response that has sent nothing yet asks again.
 */
export interface FillEndMessage {
  strata: 'fill-end';
  id: number;
  chunks?: number;
  exited?: true;
}

/**
 * To every worker: a purge started; the fills it covers take no new reader (their pending keys
 * are unlisted, as the primary's lock broker unlists their locks).
 */
export interface PurgeFillsMessage {
  strata: 'purge-fills';
  purge: FillPurge;
}

/**
 * To a lock holder's worker, once per lock (`id`: the holder's request id): another worker waits
 * for the key, so that worker's commits should not wait for others to share their transaction
 * (gathered-commits.ts) until the holder's fill ends.
 */
export interface HurryMessage {
  strata: 'hurry';
  id: number;
}

/** What the primary sends a worker about its lock requests (and purges closing fills). */
export type LockMessage =
  | VerdictMessage
  | FillMessage
  | CommittedMessage
  | FillEndMessage
  | PurgeFillsMessage
  | HurryMessage;

/** The worker's listeners are bound: it takes traffic. */
export interface ReadyMessage {
  strata: 'ready';
  addresses: string[];
  /** The worker's body id prefix (CacheStore.bodyIdPrefix): its bodies are swept once it exits. */
  bodies: string;
}

/** The worker's cache writes started or stopped failing (the primary's health answers for the node). */
export interface StoreStateMessage {
  strata: 'store-state';
  failing: boolean;
  /** Why, in an operator's words (disk full, LMDB map full, ...), while failing. */
  reason?: string;
}

/** Drain in-flight requests, then exit 0. */
export interface ShutdownMessage {
  strata: 'shutdown';
}

/**
 * A draining worker's listeners are closed and its requests done: the primary echoes this back,
 * and the worker exits once the echo arrives (leave.ts). Messages arrive in order, so by then
 * every connection node:cluster handed to it has been taken or given back to another worker;
 * a worker that exited with such a handover unread left that client connected to nobody.
 */
export interface LeavingMessage {
  strata: 'leaving';
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

/** A worker's requests admitted per rate-limit key since its last report (every RATE_SYNC_MS). */
export interface RateCountsMessage {
  strata: 'rate-counts';
  reports: RateCounts[];
}

/** To every worker: keys over their node-wide rate limit, refused until the time given. */
export interface RateOverMessage {
  strata: 'rate-over';
  over: RateOver[];
}

/**
 * Origin state shared node-wide: from the primary, health check results (its probes are the
 * node's only ones) and ejections a worker decided; from a worker, an ejection it decided.
 */
export interface OriginHealthMessage {
  strata: 'origin-health';
  origins: Array<{ name: string; verdict: 'unknown' | 'healthy' | 'unhealthy'; ms?: number | undefined }>;
}

export interface OriginEjectedMessage {
  strata: 'origin-ejected';
  origin: string;
  /** Ejection length from now, in ms. */
  ms: number;
}

export type WorkerMessage =
  | RateCountsMessage
  | AcquireMessage
  | CancelMessage
  | ReleaseMessage
  | AnnounceMessage
  | CommittedMessage
  | ReadyMessage
  | StoreStateMessage
  | LeavingMessage
  | MetricsReplyMessage
  | OriginEjectedMessage;
/** New TLS session ticket keys (base64, 48 bytes) for every TLS listener (rotation). */
export interface TicketKeysMessage {
  strata: 'ticket-keys';
  keys: string;
}

export type PrimaryMessage =
  | LockMessage
  | ShutdownMessage
  | LeavingMessage
  | MetricsRequestMessage
  | RateOverMessage
  | OriginHealthMessage
  | OriginEjectedMessage
  | TicketKeysMessage;

/** Environment variable carrying the worker's config (JSON) from the primary. */
export const CONFIG_ENV = 'STRATA_WORKER_CONFIG';
/**
 * Sends to the primary over the IPC channel. With a callback: a send racing the primary's end
 * (killed) fails with EPIPE, which without one is an 'error' event on process that ended the
 * worker instead of letting it drain.
 */
export function sendToPrimary(message: WorkerMessage | LockMessage): void {
  if (process.connected) process.send?.(message, undefined, undefined, ignoreSendError);
}

function ignoreSendError(): void {}

/** The TLS session ticket keys a worker starts with (base64); rotations come as messages. */
export const TICKET_KEYS_ENV = 'STRATA_WORKER_TICKET_KEYS';

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
