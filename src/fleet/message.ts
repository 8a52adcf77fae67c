/**
 * A purge as it travels on the bus: the command, the node that accepted it and its sequence in
 * that node's purge log. `<node>:<sequence>` is the message id JetStream deduplicates on
 * (Nats-Msg-Id), so a purge published twice (a retry after a lost acknowledgement) is stored
 * once within the stream's duplicate window.
 */
import { type PurgeCommand, parsePurgeBody } from '../purge/command.ts';

export interface BusPurge {
  /** Format version. */
  v: 1;
  /** Id of the node whose admin API or CLI accepted the purge (its cache's persisted id). */
  node: string;
  /** Its sequence in that node's purge log. */
  sequence: number;
  command: PurgeCommand;
  /** Clock time (ms) the purge was accepted. */
  at: number;
}

export function busMessageId(purge: Pick<BusPurge, 'node' | 'sequence'>): string {
  return `${purge.node}:${purge.sequence}`;
}

export function encodeBusPurge(purge: BusPurge): string {
  return JSON.stringify(purge);
}

/** The purge a message carries, or why it is not one (such a message is acknowledged and skipped). */
export function decodeBusPurge(
  data: Uint8Array,
): { ok: true; purge: BusPurge } | { ok: false; reason: string } {
  let value: Partial<BusPurge>;
  try {
    value = JSON.parse(new TextDecoder().decode(data)) as Partial<BusPurge>;
  } catch (error) {
    return { ok: false, reason: `bad JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || value.v !== 1)
    return { ok: false, reason: 'not a version 1 bus purge' };
  if (typeof value.node !== 'string' || !Number.isSafeInteger(value.sequence))
    return { ok: false, reason: 'node and sequence missing' };
  const parsed = parsePurgeBody(value.command);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  return {
    ok: true,
    purge: {
      v: 1,
      node: value.node,
      sequence: value.sequence!,
      command: parsed.command,
      at: typeof value.at === 'number' ? value.at : 0,
    },
  };
}
