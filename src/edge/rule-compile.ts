/**
 * A site's cache rules compiled once, when the site is built: path patterns (prefix, glob,
 * regex), presence tests on query parameters, header fields and cookies, cache keys and
 * header rewrites. Used by site-rules.ts; not a phase.
 */
import type { KeyRule } from '../cache/key-rules.ts';
import type { RuleConfig, RuleMatchConfig } from '../config/rules-schema.ts';
import { compileGlob, compileGlobs } from './glob.ts';

/** Header rewrites of one rule, in the order they apply: remove, set, append. */
export interface HeaderEdits {
  readonly remove: readonly string[];
  readonly set: readonly (readonly [string, string])[];
  readonly append: readonly (readonly [string, string])[];
}

/** A client response rewrite, precompiled: the fields dropped (lower case), then those added (flat list). */
export interface ResponseRewrite {
  readonly drop: ReadonlySet<string>;
  readonly add: readonly string[];
}

export type Test = (value: string | undefined) => boolean;
/** `any`: one of the names present is enough; otherwise every test must pass. */
export interface Presence {
  readonly any: boolean;
  readonly tests: readonly (readonly [string, Test])[];
  /** The verdict when the request has none at all (no Cookie field, no query): known in advance. */
  readonly whenNone: boolean;
}

export interface CompiledRule {
  readonly name: string;
  readonly config: RuleConfig;
  readonly methods: ReadonlySet<string> | undefined;
  readonly path: ((path: string) => boolean) | undefined;
  readonly query: Presence | undefined;
  readonly header: Presence | undefined;
  readonly cookie: Presence | undefined;
  readonly regions: ReadonlySet<string> | undefined;
  /** Has conditions on the request beyond its method and target. */
  readonly bound: boolean;
  readonly key: KeyRule | undefined;
  readonly request: HeaderEdits | undefined;
  readonly response: HeaderEdits | undefined;
}

export function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

export function present(
  presence: Presence | undefined,
  value: (name: string) => string | undefined,
): boolean {
  if (presence === undefined) return true;
  if (presence.any) return presence.tests.some(([name, test]) => test(value(name)));
  return presence.tests.every(([name, test]) => test(value(name)));
}

/** RFC 6265 §5.4 Cookie: `a=1; b=2` (the first of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (header === undefined) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name !== '' && !cookies.has(name)) cookies.set(name, pair.slice(eq + 1).trim());
  }
  return cookies;
}

function compilePath(patterns: string | string[]): (path: string) => boolean {
  const tests = (Array.isArray(patterns) ? patterns : [patterns]).map((pattern) => {
    if (pattern.startsWith('~')) {
      const regex = new RegExp(pattern.slice(1));
      return (path: string) => regex.test(path);
    }
    if (pattern.includes('*')) return compileGlob(pattern);
    return (path: string) => path.startsWith(pattern);
  });
  return tests.length === 1 ? tests[0]! : (path) => tests.some((test) => test(path));
}

function compilePresence(
  config: string | string[] | Record<string, boolean | string>,
  lower: boolean,
): Presence {
  const has: Test = (value) => value !== undefined;
  if (typeof config === 'string') return { any: true, tests: [[config, has]], whenNone: false };
  if (Array.isArray(config))
    return { any: true, tests: config.map((name) => [name, has] as const), whenNone: false };
  const tests = Object.entries(config).map(([name, want]): readonly [string, Test] => {
    const key = lower ? name.toLowerCase() : name;
    if (want === true) return [key, has];
    if (want === false) return [key, (value) => value === undefined];
    const glob = compileGlob(want);
    return [key, (value) => value !== undefined && glob(value)];
  });
  return { any: false, tests, whenNone: tests.every(([, test]) => test(undefined)) };
}

export function compileRule(config: RuleConfig, name: string): CompiledRule {
  const match: RuleMatchConfig = config.match ?? {};
  const list = (value: string | string[] | undefined) =>
    value === undefined ? undefined : Array.isArray(value) ? value : [value];
  const methods = list(match.method);
  const regions = list(match.region);
  const header = match.header === undefined ? undefined : compilePresence(match.header, true);
  const cookie = match.cookie === undefined ? undefined : compilePresence(match.cookie, false);
  return {
    name,
    config,
    methods: methods && new Set(methods.map((method) => method.toUpperCase())),
    path: match.path === undefined ? undefined : compilePath(match.path),
    query: match.query === undefined ? undefined : compilePresence(match.query, false),
    header,
    cookie,
    regions: regions && new Set(regions.map((region) => region.toLowerCase())),
    bound: header !== undefined || cookie !== undefined || regions !== undefined,
    key: config.cacheKey && compileKey(config.cacheKey),
    request: compileEdits(config.headers?.request),
    response: compileEdits(config.headers?.response),
  };
}

function compileEdits(
  config: { set?: Record<string, string>; append?: Record<string, string>; remove?: string[] } | undefined,
): HeaderEdits | undefined {
  if (config === undefined) return undefined;
  return {
    remove: config.remove ?? [],
    set: Object.entries(config.set ?? {}),
    append: Object.entries(config.append ?? {}),
  };
}

/** The rewrites applied in order to no field at all: what they drop from the origin's, and what they add. */
export function compileRewrite(
  browserTtl: number | undefined,
  edits: readonly HeaderEdits[] | undefined,
): ResponseRewrite | undefined {
  const drop = new Set<string>();
  let add: (readonly [string, string])[] = [];
  const remove = (name: string) => {
    const lower = name.toLowerCase();
    drop.add(lower);
    add = add.filter(([field]) => field.toLowerCase() !== lower);
  };
  if (browserTtl !== undefined) {
    remove('cache-control');
    remove('expires');
    add.push(['Cache-Control', `max-age=${browserTtl}`]);
  }
  for (const edit of edits ?? []) {
    for (const name of edit.remove) remove(name);
    for (const [name, value] of edit.set) {
      remove(name);
      add.push([name, value]);
    }
    for (const field of edit.append) add.push(field);
  }
  if (drop.size === 0 && add.length === 0) return undefined;
  return { drop, add: add.flat() };
}

function compileKey(config: NonNullable<RuleConfig['cacheKey']>): KeyRule {
  const query = config.query;
  const include = query?.include && compileGlobs(query.include);
  const exclude = query?.exclude && compileGlobs(query.exclude);
  return {
    query: query && {
      keep: include ?? (exclude && ((name: string) => !exclude(name))),
      sort: query.sort ?? false,
      ignore: query.ignore ?? false,
    },
    headers: config.headers,
    cookies: config.cookies,
    region: config.region ?? false,
  };
}
