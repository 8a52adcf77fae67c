/**
 * strata purge (--url U… | --prefix P… | --tag T… | --host H… | --all) [--soft]
 *   [--admin URL --token T | --cache-dir DIR] [--json]
 */
import type { Command } from 'commander';
import {
  describePurge,
  newPurgeProblem,
  type PurgeCommand,
  type PurgeProgress,
  type PurgeResult,
  parsePurgeBody,
} from '../src/index.ts';
import {
  type AdminAnswer,
  adminBody,
  CliError,
  callAdmin,
  callAdminLines,
  openTarget,
  run,
  type Target,
  type TargetFlags,
  targetOptions,
} from './admin-client.ts';
import { ProgressLine, progressMode } from './progress.ts';
import { formatTable } from './table.ts';

interface PurgeFlags extends TargetFlags {
  url?: string[];
  prefix?: string[];
  tag?: string[];
  host?: string[];
  all?: boolean;
  soft?: boolean;
  /** true: --progress, false: --no-progress, undefined: on a terminal only. */
  progress?: boolean;
}

function commandOf(flags: PurgeFlags): PurgeCommand {
  const parsed = parsePurgeBody({
    urls: flags.url ?? [],
    prefixes: flags.prefix ?? [],
    tags: flags.tag ?? [],
    ...(flags.host ? { hosts: flags.host } : {}),
    all: flags.all === true,
    soft: flags.soft === true,
  });
  if (!parsed.ok) {
    throw new CliError(
      parsed.reason.startsWith('empty purge')
        ? 'give --url, --prefix, --tag, --host or --all'
        : parsed.reason,
    );
  }
  const problem = newPurgeProblem(parsed.command);
  if (problem !== undefined) throw new CliError(problem);
  return parsed.command;
}

/** The purge's answer (a 200 with its count and sequence), or a CliError when it is none. */
function purgeResult(target: Extract<Target, { kind: 'admin' }>, answer: AdminAnswer): PurgeResult {
  return adminBody<PurgeResult>(
    target,
    answer,
    (body) => answer.status === 200 && typeof body.purged === 'number' && typeof body.sequence === 'number',
  );
}

async function purge(flags: PurgeFlags): Promise<number> {
  const command = commandOf(flags);
  const target = openTarget(flags, 'strata purge --cache-dir');
  const line = new ProgressLine(process.stderr, progressMode(flags.progress, process.stderr), 'purging');
  let result: PurgeResult;
  try {
    if (target.kind === 'offline') {
      try {
        result = await target.cache.purge(command, (progress) => line.update(progress));
      } finally {
        await target.cache.close();
      }
    } else if (line.active) {
      const answer = await callAdminLines(target, 'POST', '/purge', command, (progressLine) => {
        const progress = (progressLine as { progress?: PurgeProgress }).progress;
        if (progress) line.update(progress);
      });
      result = purgeResult(target, answer);
    } else {
      result = purgeResult(target, await callAdmin(target, 'POST', '/purge', command));
    }
  } finally {
    line.done();
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const rows: string[][] = [];
  if (command.all) rows.push(['all', 'everything']);
  for (const url of command.urls) rows.push(['url', url]);
  for (const prefix of command.prefixes) rows.push(['prefix', prefix]);
  for (const tag of command.tags) rows.push(['tag', tag]);
  for (const host of command.hosts ?? []) rows.push(['host', host]);
  process.stdout.write(
    `${describePurge(command)}: ${result.purged} ${result.purged === 1 ? 'entry' : 'entries'} ${command.soft ? 'marked stale' : 'removed'}, sequence ${result.sequence}` +
      `${target.kind === 'offline' ? ` (offline, in ${flags.cacheDir})` : ''}\n${formatTable(['BY', 'WHAT'], rows)}\n` +
      `${result.warning ? `warning: ${result.warning}\n` : ''}`,
  );
  return 0;
}

export function registerPurge(program: Command): void {
  const command = program
    .command('purge')
    .description(
      'purge by URL (every variant, both schemes), prefix, tag, host or everything; soft marks stale instead of deleting',
    )
    .option('--url <url...>', 'absolute URL as clients request it, e.g. https://example.com/a?b=1')
    .option('--prefix <prefix...>', 'URL prefix in cache key order, e.g. https://example.com/img/')
    .option('--tag <tag...>', 'tag from Surrogate-Key or Cache-Tag')
    .option(
      '--host <host...>',
      'everything of a host, both schemes: example.com (every port) or example.com:8080',
    )
    .option('--all', 'everything in the cache')
    .option('--soft', 'mark stale (revalidated on next use) instead of removing')
    .option('--progress', 'show progress on stderr even when it is not a terminal (one line per update)')
    .option('--no-progress', 'no progress line, also on a terminal');
  for (const option of targetOptions()) command.addOption(option);
  command.action((flags: PurgeFlags) => run(() => purge(flags)));
}
