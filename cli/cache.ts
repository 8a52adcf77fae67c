/**
 * strata cache ls [--prefix P] [--tag T] | inspect URL | stats
 *   [--admin URL --token T | --cache-dir DIR] [--json]
 */

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  compactCacheDirectory,
  type InspectView,
  type ListView,
  type StatsView,
  type VariantView,
} from '../src/index.ts';
import {
  adminBody,
  CliError,
  callAdmin,
  openTarget,
  run,
  type TargetFlags,
  targetOptions,
} from './admin-client.ts';
import { formatBytes, formatFields, formatTable } from './table.ts';

interface ListFlags extends TargetFlags {
  prefix?: string;
  tag?: string;
  limit?: string;
  after?: string;
}

function print(flags: TargetFlags, value: unknown, text: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/**
 * A variant's secondary key on one line: stored as `field=value` lines (one per Vary field),
 * printed as they were it broke the table's rows apart.
 */
function variantLabel(secondaryKey: string): string {
  return secondaryKey.split('\n').filter(Boolean).join('; ');
}

function variantRow(v: VariantView): string[] {
  return [
    v.url,
    v.secondaryKey === '' ? '-' : variantLabel(v.secondaryKey),
    String(v.status),
    formatBytes(v.size),
    `${v.age}s`,
    `${v.ttl}s`,
    v.state,
    v.tags.join(' ') || '-',
  ];
}

const VARIANT_HEADERS = ['URL', 'VARY', 'STATUS', 'SIZE', 'AGE', 'TTL', 'STATE', 'TAGS'];

async function list(flags: ListFlags): Promise<number> {
  const options = {
    prefix: flags.prefix,
    tag: flags.tag,
    limit: flags.limit === undefined ? undefined : Number(flags.limit),
    after: flags.after,
  };
  const target = openTarget(flags);
  let view: ListView;
  if (target.kind === 'offline') {
    try {
      view = target.cache.list(options);
    } finally {
      await target.cache.close();
    }
  } else {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options))
      if (value !== undefined) query.set(key, String(value));
    const answer = await callAdmin(target, 'GET', `/cache?${query}`);
    view = adminBody<ListView>(target, answer, (body) => Array.isArray(body.entries));
  }
  print(flags, view, () => {
    const table = formatTable(VARIANT_HEADERS, view.entries.map(variantRow));
    return view.next === undefined ? table : `${table}\nmore: --after ${JSON.stringify(view.next)}`;
  });
  return 0;
}

async function inspect(url: string, flags: TargetFlags): Promise<number> {
  const target = openTarget(flags);
  let view: InspectView;
  if (target.kind === 'offline') {
    try {
      view = target.cache.inspect(url);
    } finally {
      await target.cache.close();
    }
  } else {
    const answer = await callAdmin(target, 'GET', `/cache?url=${encodeURIComponent(url)}`);
    view = adminBody<InspectView>(target, answer, (body) => Array.isArray(body.variants));
  }
  print(flags, view, () => {
    if (view.variants.length === 0) return `nothing stored for ${url}${view.key ? ` (key ${view.key})` : ''}`;
    const blocks = view.variants.map((v) =>
      formatFields([
        ['variant', v.secondaryKey === '' ? '(only one: no Vary)' : variantLabel(v.secondaryKey)],
        ['status', v.status],
        ['state', v.state],
        ['age', `${v.age}s`],
        ['ttl', `${v.ttl}s`],
        ['stale-while-revalidate', `${v.staleWhileRevalidate}s`],
        ['stale-if-error', `${v.staleIfError}s`],
        ['size', `${formatBytes(v.size)} (${v.size} bytes)`],
        ['content-type', v.contentType],
        ['content-encoding', v.contentEncoding],
        ['etag', v.etag],
        ['last-modified', v.lastModified],
        ['tags', v.tags.join(' ') || undefined],
        ['stored at', v.storedAt],
      ]),
    );
    return [`key ${view.key}`, ...blocks].join('\n\n');
  });
  return view.variants.length > 0 ? 0 : 1;
}

async function stats(flags: TargetFlags): Promise<number> {
  const target = openTarget(flags);
  let view: StatsView;
  if (target.kind === 'offline') {
    try {
      view = target.cache.stats();
    } finally {
      await target.cache.close();
    }
  } else {
    const answer = await callAdmin(target, 'GET', '/stats');
    view = adminBody<StatsView>(
      target,
      answer,
      (body) => typeof body.store === 'object' && typeof body.purge === 'object',
    );
  }
  print(flags, view, () => {
    const fields = formatFields([
      ['entries', view.store.entries],
      ['bytes', `${formatBytes(view.store.bytes)} of ${formatBytes(view.store.capacity)}`],
      ['purge sequence', view.purge.sequence],
      ['purge log from', view.purge.oldest],
    ]);
    if (view.purge.peers.length === 0) return fields;
    const peers = formatTable(
      ['PEER', 'DELIVERED', 'PENDING', 'LAST ERROR'],
      view.purge.peers.map((peer) => [
        peer.url,
        String(peer.delivered),
        String(peer.pending),
        (peer as { lastError?: string }).lastError ?? '-',
      ]),
    );
    return `${fields}\n\n${peers}`;
  });
  return 0;
}

async function compact(flags: { cacheDir: string; to?: string; json?: boolean }): Promise<number> {
  if (!existsSync(flags.cacheDir)) throw new CliError(`no cache directory at ${flags.cacheDir}`);
  const result = await compactCacheDirectory(flags.cacheDir, flags.to);
  process.stdout.write(
    flags.json
      ? `${JSON.stringify(result)}\n`
      : `compacted ${flags.cacheDir}: data.mdb ${formatBytes(result.before)} -> ${formatBytes(result.after)}${flags.to ? ` (copy in ${flags.to})` : ''}\n`,
  );
  return 0;
}

export function registerCache(program: Command): void {
  const cache = program
    .command('cache')
    .description('look into the cache: list entries, inspect a URL, stats');
  const ls = cache
    .command('ls')
    .description('list stored entries, in key order or under a tag')
    .option('--prefix <prefix>', 'only URLs starting with this, e.g. https://example.com/img/')
    .option('--tag <tag>', 'only entries carrying this tag')
    .option('--limit <n>', 'at most this many (default 100, at most 10000)')
    .option('--after <id>', 'continue a listing after this entry');
  const inspectCommand = cache
    .command('inspect')
    .description('what is stored for a URL: every variant, freshness, tags and size')
    .argument('<url>', 'absolute URL as clients request it');
  const statsCommand = cache.command('stats').description('entries, bytes, purge sequence and peer delivery');
  for (const command of [ls, inspectCommand, statsCommand]) {
    for (const option of targetOptions()) command.addOption(option);
  }
  cache
    .command('compact')
    .description(
      "copy a stopped node's LMDB data file without its free pages (the file never shrinks by itself)",
    )
    .requiredOption('--cache-dir <dir>', 'cache directory of a stopped node')
    .option('--to <dir>', 'write the compacted copy here and leave the directory as it is')
    .option('--json', 'print the sizes as JSON')
    .action((flags: { cacheDir: string; to?: string; json?: boolean }) => run(() => compact(flags)));
  ls.action((flags: ListFlags) => run(() => list(flags)));
  inspectCommand.action((url: string, flags: TargetFlags) => run(() => inspect(url, flags)));
  statsCommand.action((flags: TargetFlags) => run(() => stats(flags)));
}
