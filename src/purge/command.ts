/**
 * A purge command, as the admin API receives it and the purge log stores it:
 * `{"urls": [...], "prefixes": [...], "tags": [...], "hosts": [...], "all": false, "soft": false}`.
 * Parsing reports the first problem as a sentence an operator can act on.
 *
 * `hosts` is newer than the other lists: a command names it only when it purges a host, so a
 * command without one is stored, logged and forwarded exactly as before (a peer that does not
 * know `hosts` still accepts every other purge).
 */
import { canonicalAuthority } from '../http/request-target.ts';

export interface PurgeCommand {
  /** Absolute URLs as the client sees them; every variant of each is purged. */
  urls: string[];
  /** Absolute URL prefixes (scheme://authority/path...), matched against the cache key order. */
  prefixes: string[];
  tags: string[];
  /**
   * Hosts (`example.com`, or `example.com:8080` for one port): everything stored for the host,
   * both schemes. Absent when the command purges no host.
   */
  hosts?: string[];
  all: boolean;
  /** Mark stale instead of deleting. */
  soft: boolean;
}

/**
 * The identity of a purge across the fleet: the source that first accepted it (a node's id and
 * the purge's sequence in that node's log, or a bus stream's name and its stream sequence),
 * carried unchanged through every hop. Each node remembers the highest sequence it has applied
 * per origin (the purge fence compares against it: docs/tiers.md).
 */
export interface PurgeOrigin {
  node: string;
  sequence: number;
}

/** Where a purge forwarded by another node came from (carried in the POST body). */
export interface Forwarded {
  /** The sending node's id. */
  node: string;
  /** The sequence of the purge in the sender's log (senders deliver in order). */
  sequence: number;
  /** Ids of the nodes the purge has passed through, first to last: stops forwarding loops. */
  path: string[];
  /**
   * The source that first accepted the purge. Absent from a sender that predates origins: the
   * sender (`node`, `sequence`) stands for it.
   */
  origin?: PurgeOrigin;
  /**
   * Further origins merged into this purge: a bus backlog applied as one walk stands for the
   * purges of every node it holds, and is forwarded so.
   */
  covers?: PurgeOrigin[];
}

/** A purge origin's id as headers and meta keys carry it: a node id or a stream name. */
export const ORIGIN_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The origin of a forwarded purge: its own, or the sender's for a sender without origins. */
export function originOf(forwarded: Forwarded): PurgeOrigin {
  return forwarded.origin ?? { node: forwarded.node, sequence: forwarded.sequence };
}

export type ParsedPurge =
  | { ok: true; command: PurgeCommand; forwarded: Forwarded | undefined }
  | { ok: false; reason: string };

/** Items allowed per list in one command. */
export const MAX_ITEMS = 10_000;
/** Longest tag accepted (the same limit the store phase applies to indexed tags). */
export const MAX_TAG_LENGTH = 256;
const KEYS: ReadonlySet<string> = new Set(['urls', 'prefixes', 'tags', 'hosts', 'all', 'soft', 'forwarded']);
const ABSOLUTE = /^https?:\/\/[^/?#\s]+/i;

function stringList(body: Record<string, unknown>, name: string): string[] | string {
  const value = body[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) return `${name} must be an array of strings`;
  if (value.length > MAX_ITEMS) return `${name} holds ${value.length} items; at most ${MAX_ITEMS} per purge`;
  for (const item of value) {
    if (typeof item !== 'string' || item.length === 0) return `${name} must hold non-empty strings`;
  }
  return value as string[];
}

/** Most origins one forwarded purge may stand for (a merged bus backlog of many nodes' purges). */
const MAX_COVERS = 256;

function parseOrigin(value: unknown): PurgeOrigin | undefined {
  const o = value as Partial<PurgeOrigin> | null;
  if (typeof o !== 'object' || o === null || typeof o.node !== 'string' || !ORIGIN_ID.test(o.node))
    return undefined;
  if (!Number.isSafeInteger(o.sequence) || o.sequence! < 1) return undefined;
  return { node: o.node, sequence: o.sequence! };
}

function parseForwarded(value: unknown): Forwarded | string {
  const f = value as Partial<Forwarded> | null;
  if (
    typeof f !== 'object' ||
    f === null ||
    typeof f.node !== 'string' ||
    !Number.isSafeInteger(f.sequence) ||
    !Array.isArray(f.path) ||
    !f.path.every((id) => typeof id === 'string')
  ) {
    return 'forwarded must be {"node": string, "sequence": integer, "path": [string]}';
  }
  const forwarded: Forwarded = { node: f.node, sequence: f.sequence!, path: f.path };
  if (f.origin !== undefined) {
    const origin = parseOrigin(f.origin);
    if (origin === undefined)
      return 'forwarded.origin must be {"node": id (letters, digits, ._:-), "sequence": positive integer}';
    forwarded.origin = origin;
  }
  if (f.covers !== undefined) {
    const covers =
      Array.isArray(f.covers) && f.covers.length <= MAX_COVERS ? f.covers.map(parseOrigin) : [undefined];
    if (covers.includes(undefined))
      return `forwarded.covers must be a list of at most ${MAX_COVERS} origins {"node": id, "sequence": positive integer}`;
    if (covers.length > 0) forwarded.covers = covers as PurgeOrigin[];
  }
  return forwarded;
}

/** Validates a parsed JSON body. */
export function parsePurgeBody(body: unknown): ParsedPurge {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, reason: 'the body must be a JSON object' };
  }
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!KEYS.has(key)) return { ok: false, reason: `unknown field "${key}"` };
  }
  const urls = stringList(record, 'urls');
  const prefixes = stringList(record, 'prefixes');
  const tags = stringList(record, 'tags');
  const hosts = stringList(record, 'hosts');
  for (const list of [urls, prefixes, tags, hosts])
    if (typeof list === 'string') return { ok: false, reason: list };
  for (const field of ['all', 'soft'] as const) {
    if (record[field] !== undefined && typeof record[field] !== 'boolean') {
      return { ok: false, reason: `${field} must be true or false` };
    }
  }
  const command: PurgeCommand = {
    urls: urls as string[],
    prefixes: prefixes as string[],
    tags: tags as string[],
    all: record.all === true,
    soft: record.soft === true,
  };
  if ((hosts as string[]).length > 0) command.hosts = hosts as string[];
  for (const host of command.hosts ?? []) {
    if (hostKey(host) === undefined) {
      return {
        ok: false,
        reason: `host "${host}" must be a host name with an optional port, e.g. example.com`,
      };
    }
  }
  for (const url of command.urls) {
    if (!ABSOLUTE.test(url)) return { ok: false, reason: `"${url}" is not an absolute http(s) URL` };
  }
  for (const prefix of command.prefixes) {
    if (!ABSOLUTE.test(prefix)) {
      return {
        ok: false,
        reason: `prefix "${prefix}" must start with scheme://host, e.g. https://example.com/img/`,
      };
    }
  }
  for (const tag of command.tags) {
    if (tag.length > MAX_TAG_LENGTH)
      return { ok: false, reason: `a tag is longer than ${MAX_TAG_LENGTH} characters` };
  }
  if (!command.all && itemCount(command) === 0) {
    return { ok: false, reason: 'empty purge: give urls, prefixes, tags, hosts, or "all": true' };
  }
  let forwarded: Forwarded | undefined;
  if (record.forwarded !== undefined) {
    const parsed = parseForwarded(record.forwarded);
    if (typeof parsed === 'string') return { ok: false, reason: parsed };
    forwarded = parsed;
  }
  return { ok: true, command, forwarded };
}

/**
 * Why an operator's URL or prefix names no host a request could have (`http://a b/c`,
 * `http://a:99999/`, `http://[::1/`), or undefined when it names one. Asked of new purges (the
 * admin API, the CLI), not of logged or forwarded ones: those a node already took stay valid.
 */
function hostProblem(url: string): string | undefined {
  const match = /^(https?):\/\/([^/?#]*)/i.exec(url);
  if (!match) return undefined; // not absolute: the purge's own check says so
  const scheme = match[1]!.toLowerCase() as 'http' | 'https';
  if (canonicalAuthority(match[2]!, scheme) !== undefined && match[2] !== '') return undefined;
  return `"${url}" names no valid host ("${match[2]}"): scheme://host[:port]/path, e.g. https://example.com/a.css`;
}

/** What makes a new purge (the admin API's, the CLI's) name no host a request could have. */
export function newPurgeProblem(command: PurgeCommand): string | undefined {
  for (const url of [...command.urls, ...command.prefixes]) {
    const problem = hostProblem(url);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** How many URLs, prefixes, tags and hosts a command names. */
export function itemCount(command: PurgeCommand): number {
  return command.urls.length + command.prefixes.length + command.tags.length + (command.hosts?.length ?? 0);
}

/**
 * A host as the cache key spells it (lower case, no trailing dot), with its port when one is
 * given: undefined when it is not a host name or address with an optional port.
 */
export function hostKey(host: string): { name: string; port: number | undefined } | undefined {
  if (host.includes('/') || host.includes('@')) return undefined;
  // Spelled with the port kept whatever it is (no scheme's default applies yet).
  const spelled = canonicalAuthority(host, 'http');
  if (spelled === undefined || spelled === '') return undefined;
  const port = /:(\d+)$/.exec(host);
  const name = port ? spelled.replace(/:\d+$/, '') : spelled;
  return { name, port: port ? Number(port[1]) : undefined };
}

/**
 * Parses a request body's text (bad JSON is a reason, not an exception). `add`: tags and softness
 * from headers (Surrogate-Key, Fastly-Soft-Purge), merged into the body before it is checked, so
 * that a body naming nothing itself (`{"soft": true}`) purges the header's tags.
 */
export function parsePurgeText(text: string, add?: { tags: string[]; soft: boolean }): ParsedPurge {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `bad JSON: ${(error as Error).message}` };
  }
  if (add === undefined || typeof body !== 'object' || body === null || Array.isArray(body))
    return parsePurgeBody(body);
  const record = body as Record<string, unknown>;
  const tags =
    record.tags === undefined
      ? add.tags
      : Array.isArray(record.tags)
        ? [...record.tags, ...add.tags]
        : record.tags;
  return parsePurgeBody({ ...record, tags, ...(add.soft ? { soft: true } : {}) });
}

/** One line naming what a command purges, for logs and the CLI. */
export function describePurge(command: PurgeCommand): string {
  const parts: string[] = [];
  if (command.all) parts.push('everything');
  if (command.urls.length > 0) parts.push(`${command.urls.length} url${command.urls.length > 1 ? 's' : ''}`);
  if (command.prefixes.length > 0)
    parts.push(`${command.prefixes.length} prefix${command.prefixes.length > 1 ? 'es' : ''}`);
  if (command.tags.length > 0) parts.push(`${command.tags.length} tag${command.tags.length > 1 ? 's' : ''}`);
  const hosts = command.hosts?.length ?? 0;
  if (hosts > 0) parts.push(`${hosts} host${hosts > 1 ? 's' : ''}`);
  return `${command.soft ? 'soft' : 'hard'} purge of ${parts.join(', ')}`;
}
