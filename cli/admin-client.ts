/**
 * How the purge and cache commands reach a node: its admin API (URL and bearer token from
 * flags, STRATA_ADMIN_TOKEN or the config file), or, with --cache-dir, a stopped node's
 * cache directory opened directly. The token is sent, never printed.
 */
import { existsSync } from 'node:fs';
import { Option } from 'commander';
import { type Config, loadConfig, type OfflineCache, openCacheDirectory } from '../src/index.ts';

export interface TargetFlags {
  admin?: string;
  token?: string;
  config?: string;
  cacheDir?: string;
  json?: boolean;
}

/** The options every command that talks to a node accepts. */
export function targetOptions(): Option[] {
  return [
    new Option(
      '--admin <url>',
      'admin API of the node (default: admin.listen of --config, or 127.0.0.1:9091)',
    ),
    new Option('--token <token>', 'admin bearer token (default: admin.token of --config)').env(
      'STRATA_ADMIN_TOKEN',
    ),
    new Option('--config <file>', "the node's config file (admin address and token, sites' sortQuery)"),
    new Option('--cache-dir <dir>', "work on a stopped node's cache directory instead of its admin API"),
    new Option('--json', 'print JSON for scripts'),
  ];
}

export class CliError extends Error {}

export type Target =
  | { kind: 'admin'; url: string; token: string | undefined }
  | { kind: 'offline'; cache: OfflineCache };

function readConfig(flags: TargetFlags): Config | undefined {
  return flags.config ? loadConfig({ file: flags.config, env: process.env }) : undefined;
}

/** The site the node picks decides: exact name, then the longest matching wildcard, then `*`. */
function sortsQuery(config: Config | undefined, host: string): boolean {
  const name = host.toLowerCase().replace(/:\d+$/, '');
  const sites = config?.sites ?? [];
  const exact = sites.find((site) => site.hosts.includes(host.toLowerCase()) || site.hosts.includes(name));
  if (exact) return exact.sortQuery;
  let wildcard: { sortQuery: boolean; length: number } | undefined;
  for (const site of sites)
    for (const pattern of site.hosts)
      if (
        pattern.startsWith('*.') &&
        name.endsWith(pattern.slice(1)) &&
        pattern.length > (wildcard?.length ?? 0)
      )
        wildcard = { sortQuery: site.sortQuery, length: pattern.length };
  if (wildcard) return wildcard.sortQuery;
  return sites.find((site) => site.hosts.includes('*'))?.sortQuery ?? false;
}

/**
 * The node's admin API, or its cache directory with --cache-dir. `tool`: the command, when it
 * changes the directory (it holds the directory meanwhile: a node started then is refused).
 */
export function openTarget(flags: TargetFlags, tool?: string): Target {
  const config = readConfig(flags);
  if (flags.cacheDir !== undefined) {
    if (!existsSync(flags.cacheDir)) throw new CliError(`no cache directory at ${flags.cacheDir}`);
    return {
      kind: 'offline',
      cache: openCacheDirectory({
        dir: flags.cacheDir,
        ...(tool === undefined ? {} : { tool }),
        sortQueryHosts: (host) => sortsQuery(config, host),
        ...(config ? { capacity: config.cache.maxSize, batchSize: config.purge.batchSize } : {}),
      }),
    };
  }
  const listen = config?.admin.listen ?? '127.0.0.1:9091';
  const url = flags.admin ?? `http://${listen}`;
  // HOST:PORT alone is taken as http://; a scheme other than http(s) is no admin API.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^https?:\/\//i.test(url))
    throw new CliError(
      `--admin ${url} is not an http:// URL: give the admin listener, e.g. http://127.0.0.1:9091`,
    );
  return {
    kind: 'admin',
    url: /^https?:\/\//i.test(url) ? url : `http://${url}`,
    // An empty --token or STRATA_ADMIN_TOKEN gives no token.
    token: flags.token || config?.admin.token || undefined,
  };
}

export interface AdminAnswer {
  status: number;
  body: unknown;
}

export async function callAdmin(
  target: Extract<Target, { kind: 'admin' }>,
  method: string,
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  const headers: Record<string, string> = {};
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(new URL(path, target.url), {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(600_000),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the admin API at ${target.url}: ${fetchFailure(error)} (is the node running? for a stopped node use --cache-dir DIR)`,
    );
  }
  return answerOf(target, response.status, await response.text());
}

/** Why fetch failed: it says only "fetch failed", the reason (ECONNREFUSED, a timeout) is its cause. */
export function fetchFailure(error: unknown): string {
  return (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
}

/** An answer's text as JSON, or a CliError for a refused token or an error status. */
function answerOf(target: Extract<Target, { kind: 'admin' }>, status: number, text: string): AdminAnswer {
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  if (status === 401) throw new CliError(refusal(target, (parsed as { error?: unknown } | null)?.error));
  if (status >= 400 && status !== 404) {
    const error = (parsed as { error?: unknown } | null)?.error;
    // A node's client port refuses its admin token; anything else answering is no admin API.
    if (typeof error !== 'string')
      throw new CliError(
        `${target.url} did not answer as a Strata admin API (${status}: ${firstLine(text)}): is --admin the node's admin listener?`,
      );
    throw new CliError(`the admin API answered ${status}: ${error}`);
  }
  return { status, body: parsed };
}

/** The first line of a text answer, bounded: a web server's error page is one line of it. */
function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0]!.trim();
  return line.length > 120 ? `${line.slice(0, 120)}…` : line;
}

/**
 * The body of an answer when `valid` finds in it what the admin API answers, else a CliError: the
 * server at --admin is something else (a web server's 404 page, a port answering every path with
 * a page), and reading on would print `undefined` or a TypeError.
 */
export function adminBody<T>(
  target: Extract<Target, { kind: 'admin' }>,
  answer: AdminAnswer,
  valid: (body: Partial<T>) => boolean,
): T {
  const body = answer.body;
  if (typeof body !== 'object' || body === null || !valid(body as Partial<T>)) {
    throw new CliError(
      `${target.url} did not answer as a Strata admin API (${answer.status}): is --admin the node's admin listener?`,
    );
  }
  return body as T;
}

/** Why the admin API answered 401, as the operator can act on it (the token itself is never printed). */
function refusal(target: Extract<Target, { kind: 'admin' }>, error: unknown): string {
  // The node was started without one: every call is refused, whatever token is given.
  if (error === 'no admin token configured')
    return `the node at ${target.url} has no admin token configured, so its admin API refuses every call: start it with --admin-token TOKEN (or STRATA_ADMIN_TOKEN, or admin.token in its config) and give the same token here`;
  if (target.token === undefined)
    return 'the admin API refused the call (401): no token was given: give --token or STRATA_ADMIN_TOKEN';
  return `the admin API refused the token (401): it is not the admin token of the node at ${target.url}`;
}

/**
 * A call answered as NDJSON (`Accept: application/x-ndjson`): each line but the last goes to
 * `onLine` as it arrives; the last line is the answer. Errors are reported as callAdmin's are.
 */
export async function callAdminLines(
  target: Extract<Target, { kind: 'admin' }>,
  method: string,
  path: string,
  body: unknown,
  onLine: (line: unknown) => void,
): Promise<AdminAnswer> {
  const headers: Record<string, string> = {
    accept: 'application/x-ndjson',
    'content-type': 'application/json',
  };
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  let response: Response;
  try {
    response = await fetch(new URL(path, target.url), {
      method,
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(600_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CliError(
      `cannot reach the admin API at ${target.url}: ${cause} (is the node running? for a stopped node use --cache-dir DIR)`,
    );
  }
  if (response.status !== 200 || !response.headers.get('content-type')?.includes('ndjson')) {
    // An error answer (or a node that streams no progress): one JSON object, read as callAdmin does.
    const text = await response.text();
    return answerOf(target, response.status, text);
  }
  let last: unknown;
  let pending = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
      if (line === '') continue;
      if (last !== undefined) onLine(last);
      last = JSON.parse(line);
    }
  }
  if (pending.trim() !== '') {
    if (last !== undefined) onLine(last);
    last = JSON.parse(pending);
  }
  const error = (last as { error?: string } | undefined)?.error;
  if (last === undefined || error !== undefined)
    throw new CliError(`the admin API failed the purge: ${error ?? 'the answer ended early'}`);
  return { status: 200, body: last };
}

/** Runs a command body, printing a CliError as one line and exiting 1. */
export function run(action: () => Promise<number | undefined>): Promise<void> {
  return action().then(
    (code) => {
      if (code) process.exitCode = code;
    },
    (error: unknown) => {
      // One line; STRATA_DEBUG=1 adds the stack of an error that is not the CLI's or the node's.
      const own = error instanceof CliError || (error as { code?: string }).code?.startsWith('EDGE_ERR');
      const message =
        !own && process.env.STRATA_DEBUG && error instanceof Error
          ? (error.stack ?? error.message)
          : error instanceof Error
            ? error.message
            : String(error);
      process.stderr.write(`strata: ${message}\n`);
      process.exitCode = 1;
    },
  );
}
