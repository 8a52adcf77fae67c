/**
 * Loading merges defaults < file < environment < flags, validates once against the
 * schema (every problem reported with its path), then freezes the result.
 */
import { readFileSync } from 'node:fs';
import { EdgeError } from '../errors.ts';
import { backupProblem } from './backups.ts';
import {
  adminProblems,
  type Finding,
  knownKeys,
  nearestKey,
  originCaProblems,
  probeNotes,
  SourceMap,
  siteProblems,
  sizeProblems,
  tlsNotes,
  tlsProblems,
  wildcardNotes,
} from './check.ts';
import { type Config, configSchema, isOriginUrl } from './schema.ts';
import { parseListen } from './units.ts';
import { loadYaml } from './yaml.ts';

/** Overrides from the command line; each replaces what the file says. */
export interface ConfigOverrides {
  listen?: string;
  /** A TLS listener (with tlsCert and tlsKey): replaces the file's TLS listeners. */
  listenTls?: string;
  tlsCert?: string;
  tlsKey?: string;
  origin?: string;
  cacheDir?: string;
  adminListen?: string;
  adminToken?: string;
  workers?: number | 'auto';
  logLevel?: string;
}

export interface LoadOptions {
  /** Path of a YAML or JSON file. */
  file?: string;
  /** Environment variables (STRATA_*); defaults to none so tests stay hermetic. */
  env?: Record<string, string | undefined>;
  overrides?: ConfigOverrides;
  /**
   * Top-level sections that replace the file's (the fleet's shared configuration: sites,
   * origins, geo), before the environment and flags are applied.
   */
  replace?: Record<string, unknown>;
}

export interface ConfigProblem {
  path: string;
  message: string;
  /** The path as segments of the input (for source positions). */
  segments?: Array<string | number>;
  /** An unknown key: the key itself. */
  key?: string;
}

type Raw = Record<string, unknown>;

export function readConfigFile(file: string): Raw {
  return parseConfigText(file, readConfigText(file));
}

function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new EdgeError(
      'EDGE_ERR_CONFIG_READ',
      `cannot read config file ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

function parseConfigText(file: string, text: string): Raw {
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : loadYaml().parse(text);
  } catch (cause) {
    const at = (cause as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    const where = at ? `${file}:${at.line}:${at.col}` : file;
    throw new EdgeError(
      'EDGE_ERR_CONFIG_READ',
      `cannot parse config file ${where}: ${(cause as Error).message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      {
        cause,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new EdgeError('EDGE_ERR_CONFIG_READ', `config file ${file} must hold a mapping at the top level`);
  }
  return parsed as Raw;
}

/** The environment variables the node reads, each the same as its flag. */
function fromEnv(env: Record<string, string | undefined>): ConfigOverrides {
  const overrides: ConfigOverrides = {};
  if (env.STRATA_LISTEN) overrides.listen = env.STRATA_LISTEN;
  if (env.STRATA_LISTEN_TLS) overrides.listenTls = env.STRATA_LISTEN_TLS;
  if (env.STRATA_TLS_CERT) overrides.tlsCert = env.STRATA_TLS_CERT;
  if (env.STRATA_TLS_KEY) overrides.tlsKey = env.STRATA_TLS_KEY;
  if (env.STRATA_ORIGIN) overrides.origin = env.STRATA_ORIGIN;
  if (env.STRATA_CACHE_DIR) overrides.cacheDir = env.STRATA_CACHE_DIR;
  if (env.STRATA_ADMIN_LISTEN) overrides.adminListen = env.STRATA_ADMIN_LISTEN;
  if (env.STRATA_ADMIN_TOKEN) overrides.adminToken = env.STRATA_ADMIN_TOKEN;
  if (env.STRATA_LOG_LEVEL) overrides.logLevel = env.STRATA_LOG_LEVEL;
  return overrides;
}

/** Each override's flag and variable, to name what the operator wrote in a problem. */
const OVERRIDE_NAMES: Record<keyof ConfigOverrides, readonly [flag: string, variable: string]> = {
  listen: ['--listen', 'STRATA_LISTEN'],
  listenTls: ['--listen-tls', 'STRATA_LISTEN_TLS'],
  tlsCert: ['--tls-cert', 'STRATA_TLS_CERT'],
  tlsKey: ['--tls-key', 'STRATA_TLS_KEY'],
  origin: ['--origin', 'STRATA_ORIGIN'],
  cacheDir: ['--cache-dir', 'STRATA_CACHE_DIR'],
  adminListen: ['--admin-listen', 'STRATA_ADMIN_LISTEN'],
  adminToken: ['--admin-token', 'STRATA_ADMIN_TOKEN'],
  workers: ['--workers', '--workers'],
  logLevel: ['--log-level', 'STRATA_LOG_LEVEL'],
};

/** The configuration key each plain override sets (the listeners and the origin are named apart). */
const OVERRIDE_PATHS: Partial<Record<keyof ConfigOverrides, string>> = {
  cacheDir: 'cache.dir',
  adminListen: 'admin.listen',
  adminToken: 'admin.token',
  logLevel: 'logging.level',
  workers: 'workers',
};

/**
 * A problem with a value a flag or a variable set is named by what the operator wrote
 * (`STRATA_LOG_LEVEL (logging.level): …`), not by a place in a file that may not have it.
 */
function nameOverridden(
  problems: ConfigProblem[],
  overrides: ConfigOverrides,
  named: OverrideName,
): ConfigProblem[] {
  return problems.map((problem) => {
    for (const [key, path] of Object.entries(OVERRIDE_PATHS) as [keyof ConfigOverrides, string][]) {
      if (overrides[key] !== undefined && problem.path === path)
        return { path: `${named(key)} (${path})`, message: problem.message };
    }
    return problem;
  });
}

/** The name of an override as given: its flag, or its variable. */
type OverrideName = (key: keyof ConfigOverrides) => string;

/** Flags over the environment, key by key (a flag wins over its variable), each named as given. */
function mergeOverrides(
  env: ConfigOverrides,
  flags: ConfigOverrides,
): { overrides: ConfigOverrides; named: OverrideName } {
  const given = Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== undefined));
  return {
    overrides: { ...env, ...given },
    named: (key) => OVERRIDE_NAMES[key][key in given ? 0 : 1],
  };
}

function section(raw: Raw, name: string): Raw {
  const value = raw[name];
  if (value === undefined) {
    const created: Raw = {};
    raw[name] = created;
    return created;
  }
  return value as Raw;
}

/**
 * Applies flags and the environment over the raw file; returns what cannot be applied, named by
 * the flag or variable the operator wrote (not by a place in a file that does not have it).
 */
function applyOverrides(raw: Raw, overrides: ConfigOverrides, named: OverrideName): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const notListen = (key: 'listen' | 'listenTls', value: string, example: string) =>
    problems.push({
      path: named(key),
      message: `${JSON.stringify(value)} is not HOST:PORT, e.g. ${example}`,
    });
  if (overrides.listen !== undefined && parseListen(overrides.listen) === undefined)
    notListen('listen', overrides.listen, '127.0.0.1:8080');
  else if (overrides.listen !== undefined) {
    // The plain listeners are replaced; TLS listeners (file, environment) stay.
    const current = Array.isArray(raw.listeners) ? (raw.listeners as Raw[]) : [];
    raw.listeners = [
      { listen: overrides.listen },
      ...current.filter((l) => l && typeof l === 'object' && l.tls),
    ];
  }
  if (overrides.listenTls !== undefined && parseListen(overrides.listenTls) === undefined)
    notListen('listenTls', overrides.listenTls, '0.0.0.0:8443');
  else problems.push(...applyTlsOverrides(raw, overrides, named));
  if (overrides.cacheDir !== undefined) section(raw, 'cache').dir = overrides.cacheDir;
  if (overrides.adminListen !== undefined) section(raw, 'admin').listen = overrides.adminListen;
  if (overrides.adminToken !== undefined) section(raw, 'admin').token = overrides.adminToken;
  if (overrides.logLevel !== undefined) section(raw, 'logging').level = overrides.logLevel;
  if (overrides.workers !== undefined) raw.workers = overrides.workers;
  if (overrides.origin !== undefined) {
    const url = normalizeOriginFlag(overrides.origin);
    if (url === undefined) {
      problems.push({
        path: named('origin'),
        message: `${JSON.stringify(overrides.origin)} is not an origin URL: expected http://HOST:PORT or https://HOST:PORT (no path, query, fragment or credentials), or HOST:PORT for http`,
      });
      return problems;
    }
    const clash = originFlagClash(raw);
    if (clash !== undefined) {
      problems.push({ path: named('origin'), message: clash });
      return problems;
    }
    // The flag's origin answers every Host that no site of the file claims.
    const origins = Array.isArray(raw.origins) ? [...raw.origins] : [];
    const sites = Array.isArray(raw.sites) ? [...raw.sites] : [];
    origins.push({ name: 'origin', url });
    sites.push({ name: 'default', hosts: ['*'], origins: ['origin'] });
    raw.origins = origins;
    raw.sites = sites;
  }
  return problems;
}

/**
 * What in the file leaves no room for the flag's origin `origin` and its catch-all site
 * `default`: the same names (reported at a place the file does not have), or a site of its own
 * answering every host that does not name the flag's origin (the flag would silently do nothing).
 */
function originFlagClash(raw: Raw): string | undefined {
  const origins = (Array.isArray(raw.origins) ? raw.origins : []) as Array<Raw | null>;
  const sites = (Array.isArray(raw.sites) ? raw.sites : []) as Array<Raw | null>;
  const origin = origins.findIndex((entry) => entry?.name === 'origin');
  if (origin >= 0)
    return `the configuration already has an origin named "origin" (origins[${origin}]): rename it, or give this one in the file`;
  const named = sites.findIndex((site) => site?.name === 'default');
  if (named >= 0)
    return `the configuration already has a site named "default" (sites[${named}]): rename it, or give this origin in the file`;
  // A catch-all site of the file that names the flag's origin uses it (the bench does): no clash.
  const usesFlag = sites.some((site) =>
    [site?.origins, site?.backup].some((names) => Array.isArray(names) && names.includes('origin')),
  );
  const all = sites.findIndex((site) => Array.isArray(site?.hosts) && site.hosts.includes('*'));
  if (all >= 0 && !usesFlag)
    return `sites[${all}] (${JSON.stringify(sites[all]?.name)}) already answers every host (*): the flag's origin would never be asked`;
  return undefined;
}

/**
 * `--listen-tls HOST:PORT --tls-cert FILE --tls-key FILE`: one TLS listener in place of the
 * file's TLS listeners; its plain listeners (or the default one) stay. Certificate flags alone
 * give the file's TLS listeners a new certificate. A certificate flag with no TLS listener to
 * take it, or --listen-tls without both files, is refused naming the flag.
 */
function applyTlsOverrides(raw: Raw, overrides: ConfigOverrides, named: OverrideName): ConfigProblem[] {
  const { listenTls, tlsCert, tlsKey } = overrides;
  if (listenTls === undefined && tlsCert === undefined && tlsKey === undefined) return [];
  const current = Array.isArray(raw.listeners) ? (raw.listeners as Raw[]) : [{ listen: '127.0.0.1:8080' }];
  if (listenTls === undefined) {
    const tls = current.filter((l) => l && typeof l === 'object' && l.tls);
    if (tls.length === 0) {
      const message = 'needs --listen-tls HOST:PORT (or STRATA_LISTEN_TLS), or a TLS listener in the file';
      return [{ path: named(tlsCert !== undefined ? 'tlsCert' : 'tlsKey'), message }];
    }
    raw.listeners = current.map((l) =>
      l?.tls
        ? {
            ...l,
            tls: {
              ...(l.tls as Raw),
              ...(tlsCert ? { cert: tlsCert } : {}),
              ...(tlsKey ? { key: tlsKey } : {}),
            },
          }
        : l,
    );
    return [];
  }
  if (tlsCert === undefined || tlsKey === undefined) {
    const message = 'needs --tls-cert FILE and --tls-key FILE (or STRATA_TLS_CERT and STRATA_TLS_KEY)';
    return [{ path: named('listenTls'), message }];
  }
  const plain = current.filter((l) => !(l && typeof l === 'object' && l.tls));
  raw.listeners = [...plain, { listen: listenTls, tls: { cert: tlsCert, key: tlsKey } }];
  return [];
}

/**
 * `--origin http://host:port/` and `--origin host:port` both mean the origin at host:port;
 * undefined for anything else (`notaurl` is no host:port: a typo, not a host on port 80).
 */
function normalizeOriginFlag(value: string): string | undefined {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
  // Without a scheme only HOST:PORT (parseListen's `:8080` means every interface, no host).
  if (!hasScheme && (parseListen(value) === undefined || value.trim().startsWith(':'))) return undefined;
  const withScheme = hasScheme ? value : `http://${value.trim()}`;
  if (!isOriginUrl(withScheme)) return undefined;
  const url = new URL(withScheme);
  return `${url.protocol}//${url.host}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function pathOf(segments: ReadonlyArray<string | number>): string {
  return segments
    .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
    .join('')
    .replace(/^\./, '');
}

function toProblem(finding: Finding): ConfigProblem {
  return { path: pathOf(finding.segments), message: finding.message, segments: finding.segments };
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((problem) => `  ${problem.path || '(top level)'}: ${problem.message}`).join('\n');
}

/** Validates a raw config object; returns every problem, or the frozen config. */
export function validateConfig(raw: unknown): { config: Config } | { problems: ConfigProblem[] } {
  const result = configSchema.safeParse(raw);
  if (result.success) {
    const sizes = sizeProblems(result.data, raw).map(toProblem);
    if (sizes.length > 0) return { problems: sizes };
    return { config: deepFreeze(result.data) };
  }
  const problems: ConfigProblem[] = result.error.issues.flatMap((issue) => {
    const segments = issue.path.filter((part) => typeof part !== 'symbol') as Array<string | number>;
    if (issue.code !== 'unrecognized_keys')
      return [{ path: pathOf(segments), message: issue.message, segments }];
    // One problem per unknown key, each with the nearest key this place knows.
    const known = knownKeys(configSchema, segments);
    return issue.keys.map((key) => {
      const near = nearestKey(key, known);
      return {
        path: pathOf(segments),
        message: `unknown key ${key}${near ? ` (did you mean ${near}?)` : ''}`,
        segments,
        key,
      };
    });
  });
  // Cross-references are checked by the schema only once every field parsed; report them anyway.
  for (const problem of crossReferenceProblems(raw)) {
    if (!problems.some((p) => p.path === problem.path)) problems.push(problem);
  }
  return { problems };
}

export function loadConfig(options: LoadOptions = {}): Config {
  const raw: Raw = {
    ...(options.file ? readConfigFile(options.file) : {}),
    ...structuredClone(options.replace),
  };
  // What the file's sites say about each other, before --origin adds its catch-all site.
  const sites = siteProblems(raw).map(toProblem);
  // A flag wins over its variable: --origin replaces STRATA_ORIGIN, not a second origin beside it.
  const { overrides, named } = mergeOverrides(fromEnv(options.env ?? {}), options.overrides ?? {});
  sites.push(...applyOverrides(raw, overrides, named));
  const result = validateConfig(raw);
  const problems =
    'problems' in result ? [...nameOverridden(result.problems, overrides, named), ...sites] : sites;
  // Shared sections are applied in place, where building an origin that cannot read its CA
  // would fail: such a value is rejected here, with the reason, as `put` refuses it.
  if (options.replace !== undefined && 'config' in result)
    problems.push(...originCaProblems(result.config).map(toProblem));
  if (problems.length > 0) {
    // With the fleet's shared sections in place of the file's, a problem may be in either.
    const shared =
      options.replace === undefined
        ? ''
        : ` (${Object.keys(options.replace).join(', ')} from the shared configuration)`;
    const where = options.file
      ? ` in ${options.file}${shared}`
      : shared
        ? ` in the shared configuration${shared}`
        : '';
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      `invalid configuration${where}:\n${formatProblems(problems)}`,
    );
  }
  return (result as { config: Config }).config;
}

export interface CheckReport {
  /** Problems, each as `file:line:col: path: message` where the source has the place. */
  problems: string[];
  /** Remarks that do not make the file invalid. */
  notes: string[];
}

/**
 * `strata check-config FILE`: every check `strata serve` makes before it binds a port — the
 * schema, the sites against each other, the admin token on a public address, the TLS files —
 * with the environment applied as serve applies it, and each problem placed in the source.
 */
export function checkConfigFile(file: string, env: Record<string, string | undefined> = {}): CheckReport {
  const text = readConfigText(file);
  const source = new SourceMap(text);
  const raw = parseConfigText(file, text);
  const fileProblems = siteProblems(raw).map(toProblem);
  const notes = wildcardNotes(raw).map(toProblem);
  const { overrides, named } = mergeOverrides(fromEnv(env), {});
  fileProblems.push(...applyOverrides(raw, overrides, named));
  const result = validateConfig(raw);
  const problems =
    'problems' in result
      ? [...nameOverridden(result.problems, overrides, named), ...fileProblems]
      : [...fileProblems];
  if ('config' in result) {
    const { config } = result;
    problems.push(...adminProblems(config).map(toProblem), ...tlsProblems(config).map(toProblem));
    notes.push(...tlsNotes(config).map(toProblem), ...probeNotes(config).map(toProblem));
    if (config.sites.length === 0)
      notes.push({
        path: 'sites',
        segments: [],
        message: 'no sites: strata serve needs --origin URL beside this file (or sites and origins in it)',
      });
  }
  const place = (problem: ConfigProblem): string => {
    const at = problem.segments
      ? source.position({ segments: problem.segments, key: problem.key })
      : undefined;
    return `${file}:${at ? `${at.line}:${at.col}` : '1:1'}: ${problem.path || '(top level)'}: ${problem.message}`;
  };
  return { problems: problems.map(place), notes: notes.map(place) };
}

/**
 * Names that refer to nothing, read from the raw input (the schema checks them only once every
 * field parsed): duplicate origin names, sites naming origins that do not exist, backups that are
 * neither an origin nor another site. Each placed by its segments, as the schema's own.
 */
function crossReferenceProblems(raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!raw || typeof raw !== 'object') return problems;
  const { origins, sites } = raw as { origins?: unknown; sites?: unknown };
  const problem = (segments: Array<string | number>, message: string) =>
    problems.push({ path: pathOf(segments), message, segments });
  const names = new Set<string>();
  if (Array.isArray(origins)) {
    origins.forEach((origin: { name?: unknown }, index) => {
      if (typeof origin?.name !== 'string') return;
      if (names.has(origin.name)) problem(['origins', index, 'name'], `duplicate origin "${origin.name}"`);
      names.add(origin.name);
    });
  }
  if (!Array.isArray(sites)) return problems;
  const named = (list: Array<{ name?: unknown } | null>) =>
    list.flatMap((entry) => (typeof entry?.name === 'string' ? [{ name: entry.name }] : []));
  const known = {
    origins: named(Array.isArray(origins) ? origins : []),
    sites: named(sites),
  };
  sites.forEach((site: { name?: unknown; origins?: unknown; backup?: unknown }, index) => {
    if (Array.isArray(site?.origins))
      site.origins.forEach((name: unknown, j: number) => {
        if (typeof name === 'string' && !names.has(name))
          problem(['sites', index, 'origins', j], `no origin named "${name}"`);
      });
    if (Array.isArray(site?.backup) && typeof site.name === 'string') {
      const self = { name: site.name };
      site.backup.forEach((name: unknown, j: number) => {
        const why = typeof name === 'string' ? backupProblem(known, self, name) : undefined;
        if (why !== undefined) problem(['sites', index, 'backup', j], why);
      });
    }
  });
  return problems;
}
