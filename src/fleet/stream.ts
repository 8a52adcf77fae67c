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

/** Whether a stream subject (`*` one token, `>` the rest) takes `subject` (which has no wildcard). */
function takes(pattern: string, subject: string): boolean {
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '>') return have.length > i;
    if (i >= have.length || (want[i] !== '*' && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}

/**
 * The stream, when it takes fleet.subject. One made for other subjects would leave this node's
 * purges published nowhere and its consumer refused (or, made before, fed another subject's
 * purges): said, with both, rather than retried blind.
 */
function withSubject(stream: StreamInfo, fleet: FleetConfig): StreamInfo {
  const subjects = stream.config.subjects ?? [];
  if (subjects.some((pattern) => takes(pattern, fleet.subject))) return stream;
  throw new Error(
    `stream ${fleet.stream} holds subjects ${subjects.join(', ') || '(none)'}, not fleet.subject ${fleet.subject}: give the fleet's subject, or another stream`,
  );
}

export async function ensureStream(jsm: JetStreamManager, fleet: FleetConfig): Promise<StreamInfo> {
  let existing: StreamInfo | undefined;
  try {
    existing = await jsm.streams.info(fleet.stream);
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  if (existing !== undefined) return withSubject(existing, fleet);
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
    const made = await jsm.streams.info(fleet.stream).catch((again: unknown) => {
      throw notFound(again) ? error : again;
    });
    return withSubject(made, fleet);
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
