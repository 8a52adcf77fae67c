/**
 * A backlog of purges applied as one: consecutive purges of the same kind (hard or soft) are
 * merged into one command, so a node that replays thousands of purges pays one walk and one
 * durable commit per batch instead of one per purge. The effect is the same as applying them
 * one after the other: purges of one kind commute, and batches keep the stream's order.
 */
import type { PurgeCommand } from '../purge/command.ts';

/** Most purges merged into one. */
export const MAX_MERGED = 256;
/** Most items per list of a merged command (the purge log forwards it to peers as it is). */
export const MAX_MERGED_ITEMS = 2000;

function size(command: PurgeCommand): number {
  return Math.max(
    command.urls.length,
    command.prefixes.length,
    command.tags.length,
    command.hosts?.length ?? 0,
  );
}

/** Whether `next` may join `batch` (same kind, lists within bounds; an empty batch takes anything). */
export function fits(batch: readonly PurgeCommand[], next: PurgeCommand): boolean {
  const [first] = batch;
  if (first === undefined) return true;
  if (batch.length >= MAX_MERGED || first.soft !== next.soft) return false;
  let items = size(next);
  for (const command of batch) items += size(command);
  return items <= MAX_MERGED_ITEMS;
}

export function merge(commands: readonly PurgeCommand[]): PurgeCommand {
  const [first] = commands;
  if (first === undefined) throw new Error('nothing to merge');
  if (commands.length === 1) return first;
  const unique = (pick: (command: PurgeCommand) => readonly string[] | undefined) => [
    ...new Set(commands.flatMap((command) => pick(command) ?? [])),
  ];
  const merged: PurgeCommand = {
    urls: unique((c) => c.urls),
    prefixes: unique((c) => c.prefixes),
    tags: unique((c) => c.tags),
    all: commands.some((c) => c.all),
    soft: first.soft,
  };
  const hosts = unique((c) => c.hosts);
  if (hosts.length > 0) merged.hosts = hosts;
  return merged;
}
