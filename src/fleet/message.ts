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

export function busMessageId(purge: Pick<BusPurge, 'node' | 'sequence'>, part = 0): string {
  return part === 0 ? `${purge.node}:${purge.sequence}` : `${purge.node}:${purge.sequence}.${part}`;
}

/** The lists of a command a purge may be split along. */
const LISTS = ['urls', 'prefixes', 'tags', 'hosts'] as const;

/**
 * A purge as messages of at most `maxBytes` each (the server's max_payload less room for the
 * headers): one, as it is, when it fits; else its lists spread over parts that carry the same
 * node, sequence and flags, each purging some of its items (published with ids
 * `<node>:<sequence>.<part>`). A purge the admin API accepted (up to 1 MiB of body) would
 * otherwise be refused by the server for ever, and hold back every purge behind it.
 */
export function splitBusPurge(purge: BusPurge, maxBytes: number): BusPurge[] {
  if (Buffer.byteLength(encodeBusPurge(purge)) <= maxBytes) return [purge];
  const empty = (): PurgeCommand => ({
    urls: [],
    prefixes: [],
    tags: [],
    ...(purge.command.hosts !== undefined ? { hosts: [] } : {}),
    all: purge.command.all,
    soft: purge.command.soft,
  });
  const base = Buffer.byteLength(encodeBusPurge({ ...purge, command: empty() }));
  const parts: BusPurge[] = [];
  let command = empty();
  let bytes = base;
  for (const list of LISTS) {
    for (const item of purge.command[list] ?? []) {
      const cost = Buffer.byteLength(JSON.stringify(item)) + 1;
      if (bytes + cost > maxBytes && bytes > base) {
        parts.push({ ...purge, command });
        command = empty();
        bytes = base;
      }
      const items = command[list] ?? [];
      items.push(item);
      command[list] = items;
      bytes += cost;
    }
  }
  if (bytes > base || parts.length === 0) parts.push({ ...purge, command });
  return parts;
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
