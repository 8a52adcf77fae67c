/**
 * The checks beyond the schema that `strata serve` and `strata check-config` share: what the
 * sites say about each other (names, hosts, wildcards), what the admin listener needs on a
 * public address, and whether the TLS files exist, parse and are in their validity period. Also: the nearest known key for
 * an unknown one, and `file:line:col` positions of a problem in the YAML or JSON source.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { LineCounter, Node } from 'yaml';
import { z } from 'zod';
import { outOfDate } from '../http/tls.ts';
import { holdsCertificate } from '../origin/tls.ts';
import type { Config } from './schema.ts';
import { parseListen } from './units.ts';
import { loadYaml } from './yaml.ts';

export interface Located {
  /** Path segments in the raw input (keys and array indexes). */
  segments: Array<string | number>;
  /** For an unknown key: the key itself (its position is the key's, not its parent's). */
  key?: string | undefined;
}

/** A problem or a note (notes do not make a config invalid). */
export interface Finding extends Located {
  message: string;
}

export function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

/** The admin listener on a non-loopback address needs a token (serve refuses to start without). */
export function adminProblems(config: Config): Finding[] {
  if (!config.admin.enabled || config.admin.token !== undefined) return [];
  const address = parseListen(config.admin.listen);
  if (address === undefined || isLoopbackHost(address.host)) return [];
  return [
    {
      segments: ['admin', 'listen'],
      message: `admin listener on ${config.admin.listen} (not loopback) needs admin.token (or STRATA_ADMIN_TOKEN)`,
    },
  ];
}

/** Every certificate and key pair of the TLS listeners, default and SNI, with where it is configured. */
function tlsPairs(config: Config): Array<{ cert: string; key: string; at: Array<string | number> }> {
  return config.listeners.flatMap((listener, index) => {
    const tls = listener.tls;
    if (tls === undefined) return [];
    return [
      { cert: tls.cert, key: tls.key, at: ['listeners', index, 'tls'] },
      ...(tls.sni ?? []).map((entry, j) => ({
        cert: entry.cert,
        key: entry.key,
        at: ['listeners', index, 'tls', 'sni', j],
      })),
    ];
  });
}

/** Each TLS certificate and key file must exist, parse, and belong together; an https origin's CA file must hold a certificate. */
export function tlsProblems(config: Config): Finding[] {
  const problems: Finding[] = originCaProblems(config);
  for (const { cert, key, at } of tlsPairs(config)) {
    const problem = pairProblem(cert, key);
    if (problem) problems.push({ segments: [...at, problem.field], message: problem.message });
  }
  return problems;
}

/** An https origin's tls.ca that serve could not read, or that holds no certificate (origin/tls.ts). */
export function originCaProblems(config: Config): Finding[] {
  const problems: Finding[] = [];
  config.origins.forEach((origin, index) => {
    const file = origin.tls.ca;
    if (file === undefined || !origin.url.toLowerCase().startsWith('https:')) return;
    const segments = ['origins', index, 'tls', 'ca'];
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (error) {
      problems.push({ segments, message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}` });
      return;
    }
    if (!holdsCertificate(pem)) problems.push({ segments, message: `${file} holds no PEM certificate` });
  });
  return problems;
}

/**
 * A certificate expired or not valid yet is a note, not a problem: serve starts with it (and
 * logs it), since clients that do not check dates still connect, but every browser refuses it.
 */
export function tlsNotes(config: Config, now: number = Date.now()): Finding[] {
  const notes: Finding[] = [];
  for (const { cert, at } of tlsPairs(config)) {
    let reason: string | undefined;
    try {
      reason = outOfDate(new X509Certificate(readFileSync(cert)), now);
    } catch {
      continue; // unreadable or not a certificate: a problem already
    }
    if (reason !== undefined)
      notes.push({
        segments: [...at, 'cert'],
        message: `certificate ${cert} ${reason}: clients that check it refuse the connection`,
      });
  }
  return notes;
}

function pairProblem(certFile: string, keyFile: string): { field: string; message: string } | undefined {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certFile);
  } catch (error) {
    return { field: 'cert', message: `cannot read ${certFile}: ${(error as NodeJS.ErrnoException).code}` };
  }
  try {
    key = readFileSync(keyFile);
  } catch (error) {
    return { field: 'key', message: `cannot read ${keyFile}: ${(error as NodeJS.ErrnoException).code}` };
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    return {
      field: 'cert',
      message: `certificate ${certFile} / key ${keyFile} not usable: ${(error as Error).message}`,
    };
  }
  return undefined;
}

interface RawSite {
  name?: unknown;
  hosts?: unknown;
}

/**
 * What the sites of a file say about each other: a name used twice, a host pattern claimed by
 * two sites (the later one never answers it). Read from the raw file, before `--origin` adds its
 * catch-all site.
 */
export function siteProblems(raw: unknown): Finding[] {
  const sites = (raw as { sites?: unknown } | undefined)?.sites;
  if (!Array.isArray(sites)) return [];
  const problems: Finding[] = [];
  const names = new Map<string, number>();
  const hosts = new Map<string, number>();
  sites.forEach((site: RawSite, index) => {
    if (typeof site?.name === 'string') {
      const first = names.get(site.name);
      if (first !== undefined)
        problems.push({
          segments: ['sites', index, 'name'],
          message: `duplicate site name "${site.name}" (also sites[${first}])`,
        });
      else names.set(site.name, index);
    }
    if (!Array.isArray(site?.hosts)) return;
    site.hosts.forEach((host: unknown, j: number) => {
      if (typeof host !== 'string') return;
      const pattern = host.toLowerCase();
      const first = hosts.get(pattern);
      if (first === undefined) hosts.set(pattern, index);
      else
        problems.push({
          segments: ['sites', index, 'hosts', j],
          message: `host "${host}" is already claimed by sites[${first}]; this site never answers it`,
        });
    });
  });
  return problems;
}

/**
 * Overlapping wildcards across sites: not an error (the longest match wins, as in nginx), but
 * worth a note, since a config written for first-match order would mean something else.
 */
export function wildcardNotes(raw: unknown): Finding[] {
  const sites = (raw as { sites?: unknown } | undefined)?.sites;
  if (!Array.isArray(sites)) return [];
  const wildcards: Array<{ suffix: string; site: number; j: number; pattern: string }> = [];
  sites.forEach((site: RawSite, index) => {
    if (!Array.isArray(site?.hosts)) return;
    site.hosts.forEach((host: unknown, j: number) => {
      if (typeof host === 'string' && host.startsWith('*.'))
        wildcards.push({ suffix: host.slice(1).toLowerCase(), site: index, j, pattern: host });
    });
  });
  const notes: Finding[] = [];
  for (const narrow of wildcards) {
    for (const wide of wildcards) {
      if (narrow.site === wide.site || narrow.suffix === wide.suffix || !narrow.suffix.endsWith(wide.suffix))
        continue;
      notes.push({
        segments: ['sites', narrow.site, 'hosts', narrow.j],
        message: `${narrow.pattern} takes its names from ${wide.pattern} (sites[${wide.site}]): the longest wildcard wins`,
      });
    }
  }
  return notes;
}

/**
 * A parent tier probed with no host of the site (wildcard hosts only, no `healthCheck.host` nor
 * `hostHeader`): the shield answers its own address 421, every probe fails, the parent is out.
 */
export function probeNotes(config: Config): Finding[] {
  const notes: Finding[] = [];
  config.sites.forEach((site, index) => {
    const check = site.healthCheck;
    if (check === undefined || check.host !== undefined) return;
    if (site.hosts.some((host) => !host.startsWith('*'))) return;
    for (const name of site.origins) {
      const origin = config.origins.find((o) => o.name === name);
      if (origin?.tier !== 'parent' || origin.hostHeader !== undefined) continue;
      notes.push({
        segments: ['sites', index, 'healthCheck'],
        message: `parent ${name} is probed with its own address as Host (the site has wildcard hosts only): a shield answers 421 and every probe fails; name a host it serves in healthCheck.host`,
      });
    }
  });
  return notes;
}

/**
 * Checks on values the schema has parsed (sizes in bytes). The memory tier's default (256 MiB)
 * is not held against a small maxSize; a memorySize written down is.
 */
export function sizeProblems(config: Config, raw: unknown): Finding[] {
  const given = (raw as { cache?: { memorySize?: unknown } } | undefined)?.cache?.memorySize;
  if (given === undefined || config.cache.memorySize <= config.cache.maxSize) return [];
  return [
    {
      segments: ['cache', 'memorySize'],
      message: `must not exceed cache.maxSize (${config.cache.memorySize} > ${config.cache.maxSize} bytes)`,
    },
  ];
}

/** Damerau-free Levenshtein distance, bounded by the short strings of config keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The known key nearest to a typo, when it is near enough to be what was meant. */
export function nearestKey(typo: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const key of known) {
    const d = key.toLowerCase() === typo.toLowerCase() ? 0 : distance(typo, key);
    if (d < bestDistance) {
      best = key;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(typo.length / 3)) ? best : undefined;
}

/** The keys an object schema knows at a path of the input (array indexes step into elements). */
export function knownKeys(schema: z.ZodType, segments: ReadonlyArray<string | number>): string[] {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const segment of segments) {
    if (current === undefined) return [];
    if (current instanceof z.ZodArray) current = unwrap(current.element as z.ZodType);
    else if (current instanceof z.ZodObject && typeof segment === 'string')
      current = unwrap(current.shape[segment] as z.ZodType | undefined);
    else return [];
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  for (let depth = 0; current !== undefined && depth < 16; depth++) {
    const def = (current as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
    if (inner === undefined) return current;
    current = inner as z.ZodType;
  }
  return current;
}

/** Positions (1-based line and column) in a config file's source, found by input path. */
export class SourceMap {
  readonly #lines: LineCounter;
  readonly #root: Node | null;

  constructor(text: string) {
    const { LineCounter, isDocument, parseDocument } = loadYaml();
    this.#lines = new LineCounter();
    const document = parseDocument(text, { lineCounter: this.#lines });
    this.#root = isDocument(document) ? (document.contents as Node | null) : null;
  }

  /** `line:col` of the deepest node on the path (the key itself for an unknown key). */
  position(where: Located): { line: number; col: number } | undefined {
    const { isMap, isScalar, isSeq } = loadYaml();
    let node: Node | null = this.#root;
    let offset = node?.range?.[0];
    for (const segment of [...where.segments, ...(where.key === undefined ? [] : [where.key])]) {
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === String(segment),
        );
        if (pair === undefined) break;
        const key = pair.key as Node;
        offset =
          segment === where.key
            ? key.range?.[0]
            : ((pair.value as Node | null)?.range?.[0] ?? key.range?.[0]);
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment] as Node | undefined;
        if (item === undefined) break;
        offset = item.range?.[0];
        node = item;
      } else break;
    }
    return offset === undefined ? undefined : this.#lines.linePos(offset);
  }
}
