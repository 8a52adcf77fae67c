/**
 * The stream and the node's durable consumer, created when missing. An existing stream keeps
 * its own limits (an operator may have tuned them); a new one gets `fleet.retention`.
 */
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { FleetConfig } from '../config/fleet-schema.ts';

const NS_PER_MS = 1_000_000;
/** How long the server waits for an acknowledgement before delivering a purge again. */
const ACK_WAIT_MS = 60_000;
/** Purges delivered to a node before it has acknowledged the first of them. */
export const MAX_ACK_PENDING = 1000;

export function notFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.status === 404;
}

export async function ensureStream(jsm: JetStreamManager, fleet: FleetConfig): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(fleet.stream);
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  const { retention } = fleet;
  try {
    return await jsm.streams.add({
      name: fleet.stream,
      subjects: [fleet.subject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: retention.maxAge * NS_PER_MS,
      max_msgs: retention.maxMessages,
      max_bytes: retention.maxBytes,
      duplicate_window: retention.duplicateWindow * NS_PER_MS,
      num_replicas: 1,
    });
  } catch (error) {
    if (!(error instanceof JetStreamApiError)) throw error;
    // Another node created it first; else the server's reason (its subject held by another
    // stream, a limit refused) is the one to tell, not the "stream not found" of the retry.
    return jsm.streams.info(fleet.stream).catch((again: unknown) => {
      throw notFound(again) ? error : again;
    });
  }
}

/**
 * The node's durable consumer. A new one starts with the purges published from now on: a node
 * that joins the fleet replays nothing; one that was down replays what it missed. `applied`:
 * the last stream sequence the node's cache applied (0: none): a consumer made anew for it
 * starts right after, so nothing published since is passed over.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  fleet: FleetConfig,
  name: string,
  applied = 0,
): Promise<ConsumerInfo & { madeNow?: true }> {
  try {
    return await jsm.consumers.info(fleet.stream, name);
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  const made = await jsm.consumers.add(fleet.stream, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ...(applied > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: applied + 1 }
      : { deliver_policy: DeliverPolicy.New }),
    filter_subject: fleet.subject,
    ack_wait: ACK_WAIT_MS * NS_PER_MS,
    max_ack_pending: MAX_ACK_PENDING,
    description: 'Strata node: every purge of the fleet, applied then acknowledged',
  });
  return Object.assign(made, { madeNow: true as const });
}
