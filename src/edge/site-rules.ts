/**
 * A site's cache rules (compiled once when the site is built, rule-compile.ts) and the
 * decision they give a request: for each kind of action the first matching rule that
 * sets it wins; header rewrites add up in rule order. A request's method and target select
 * the rules whose method, path and query conditions pass; that selection is remembered per
 * target (bounded), so a hit on a known URL costs one map read — plus the header, cookie and
 * region conditions of the rules selected, when there are any. Not a phase: the rules phase
 * asks for the decision, the steps after it read it from the context.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { KeyRule } from '../cache/key-rules.ts';
import type { CacheOverrides, IgnoredField } from '../cache/policy/overrides.ts';
import type { RuleConfig } from '../config/rules-schema.ts';
import {
  type CompiledRule,
  compileRewrite,
  compileRule,
  type HeaderEdits,
  joined,
  parseCookies,
  present,
  type ResponseRewrite,
} from './rule-compile.ts';

export type { HeaderEdits, ResponseRewrite };
export { parseCookies };

/** What the rules decided for one request (shared by every request that decides the same). */
export interface RuleDecision {
  /** The rules that decided something, comma separated (Cache-Status detail, access log). */
  readonly name: string | undefined;
  readonly action: 'cache' | 'pass' | 'bypass' | undefined;
  /** The client's Cache-Control and Pragma are not read. */
  readonly ignoreClient: boolean;
  readonly overrides: CacheOverrides | undefined;
  readonly browserTtl: number | undefined;
  readonly key: KeyRule | undefined;
  readonly request: readonly HeaderEdits[] | undefined;
  readonly response: readonly HeaderEdits[] | undefined;
  /** The response rewrites (with browserTtl) of a response from or into the cache, and of one passed. */
  readonly cachedRewrite: ResponseRewrite | undefined;
  readonly passedRewrite: ResponseRewrite | undefined;
}

/** Where a request's region comes from (geo), when the node knows. */
export type RegionOf = (address: string) => string[];

const MEMO_LIMIT = 4096;

/** The rules selected for one target, some with conditions on the rest of the request. */
class Selection {
  readonly rules: readonly CompiledRule[];
  readonly bound: readonly CompiledRule[];
  /** Decisions per combination of bound rules that passed (bit i: bound[i]); up to 30 bound rules. */
  readonly decisions = new Map<number, RuleDecision>();
  constructor(rules: readonly CompiledRule[], bound: readonly CompiledRule[]) {
    this.rules = rules;
    this.bound = bound;
  }
}

export class SiteRules {
  readonly #rules: readonly CompiledRule[];
  readonly #ignoreClient: boolean;
  readonly #regionOf: RegionOf;
  /** Per method: target → the decision, or the rules left to test on the rest of the request. */
  readonly #memo = new Map<string, Map<string, RuleDecision | Selection>>();

  constructor(rules: readonly RuleConfig[], clientCacheControl: 'honor' | 'ignore', regionOf?: RegionOf) {
    this.#rules = rules.map((rule, index) => compileRule(rule, rule.name ?? `rule-${index + 1}`));
    this.#ignoreClient = clientCacheControl === 'ignore';
    this.#regionOf = regionOf ?? (() => []);
  }

  /**
   * Whether a rule keys by request values after the URL (headers, cookies, region): then a URL
   * may be stored under several keys, and an unsafe method invalidates them all (invalidate.ts).
   */
  get keysWithExtras(): boolean {
    return this.#rules.some((rule) => {
      const key = rule.key;
      return (
        key !== undefined && (key.region || (key.headers?.length ?? 0) > 0 || (key.cookies?.length ?? 0) > 0)
      );
    });
  }

  /** The client's regions (geo), most specific first. */
  regionsOf(address: string): string[] {
    return this.#regionOf(address);
  }

  decide(method: string, target: string, headers: IncomingHttpHeaders, address: string): RuleDecision {
    let byTarget = this.#memo.get(method);
    if (byTarget === undefined) {
      if (this.#memo.size >= 64) this.#memo.clear();
      byTarget = new Map();
      this.#memo.set(method, byTarget);
    }
    let known = byTarget.get(target);
    if (known === undefined) {
      known = this.#select(method, target);
      if (byTarget.size >= MEMO_LIMIT) byTarget.clear();
      byTarget.set(target, known);
    }
    if (!(known instanceof Selection)) return known;
    return this.#bound(known, headers, address);
  }

  /**
   * The rules selected for a target whose conditions on headers, cookies or region pass for
   * this request; the decision of each combination that passed is remembered with the selection.
   */
  #bound(selection: Selection, headers: IncomingHttpHeaders, address: string): RuleDecision {
    let cookies: Map<string, string> | undefined;
    let regions: string[] | undefined;
    const cookie = (name: string) => {
      cookies ??= parseCookies(headers.cookie);
      return cookies.get(name);
    };
    const header = (name: string) => joined(headers[name]);
    const noCookie = headers.cookie === undefined;
    const passes = (rule: CompiledRule): boolean => {
      if (rule.cookie !== undefined && noCookie ? !rule.cookie.whenNone : !present(rule.cookie, cookie))
        return false;
      if (!present(rule.header, header)) return false;
      if (rule.regions === undefined) return true;
      regions ??= this.#regionOf(address);
      return regions.some((region) => rule.regions!.has(region));
    };
    const bound = selection.bound;
    if (bound.length > 30)
      return resolve(
        selection.rules.filter((rule) => !rule.bound || passes(rule)),
        this.#ignoreClient,
      );
    let mask = 0;
    for (let i = 0; i < bound.length; i++) if (passes(bound[i]!)) mask |= 1 << i;
    const known = selection.decisions.get(mask);
    if (known !== undefined) return known;
    const passing = selection.rules.filter(
      (rule) => !rule.bound || (mask & (1 << bound.indexOf(rule))) !== 0,
    );
    const decision = resolve(passing, this.#ignoreClient);
    if (selection.decisions.size < 64) selection.decisions.set(mask, decision);
    return decision;
  }

  /** The rules whose method, path and query conditions pass: resolved now when nothing else is asked. */
  #select(method: string, target: string): RuleDecision | Selection {
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    let query: URLSearchParams | undefined;
    const param = (name: string) => {
      query ??= new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
      return query.get(name) ?? undefined;
    };
    const candidates = this.#rules.filter(
      (rule) =>
        (rule.methods === undefined || rule.methods.has(method)) &&
        (rule.path === undefined || rule.path(path)) &&
        present(rule.query, param),
    );
    const bound = candidates.filter((rule) => rule.bound);
    if (bound.length === 0) return resolve(candidates, this.#ignoreClient);
    // More than 30 rules with request conditions for one URL: decided per request, not remembered.
    return new Selection(candidates, bound);
  }
}

const SCALARS = ['ttl', 'minTtl', 'maxTtl', 'swr', 'sie'] as const;

/** Merges the matching rules: the first to set a kind of action wins it; rewrites add up. */
function resolve(rules: readonly CompiledRule[], ignoreClientBySite: boolean): RuleDecision {
  const names = new Set<string>();
  const take = <T>(pick: (rule: RuleConfig) => T | undefined): T | undefined => {
    for (const rule of rules) {
      const value = pick(rule.config);
      if (value !== undefined) {
        names.add(rule.name);
        return value;
      }
    }
    return undefined;
  };
  const overrides: CacheOverrides = {};
  for (const kind of SCALARS) overrides[kind] = take((rule) => rule[kind]);
  const statusTtl = new Map<string, number>();
  for (const rule of rules) {
    for (const [status, ttl] of Object.entries(rule.config.statusTtl ?? {})) {
      if (statusTtl.has(status)) continue;
      statusTtl.set(status, ttl);
      names.add(rule.name);
    }
  }
  if (statusTtl.size > 0) overrides.statusTtl = statusTtl;
  const ignore = take((rule) => rule.ignore);
  if (ignore !== undefined) overrides.ignore = new Set<IgnoredField>(ignore);
  const client = take((rule) => rule.clientCacheControl);
  const keyed = rules.find((rule) => rule.key !== undefined);
  if (keyed !== undefined) names.add(keyed.name);
  const edits = (side: 'request' | 'response') => {
    const out: HeaderEdits[] = [];
    for (const rule of rules) {
      const edit = rule[side];
      if (edit === undefined) continue;
      names.add(rule.name);
      out.push(edit);
    }
    return out.length === 0 ? undefined : out;
  };
  const ruled = Object.values(overrides).some((value) => value !== undefined);
  const browserTtl = take((rule) => rule.browserTtl);
  const response = edits('response');
  return {
    action: take((rule) => rule.action),
    ignoreClient: client === undefined ? ignoreClientBySite : client === 'ignore',
    overrides: ruled ? overrides : undefined,
    browserTtl,
    key: keyed?.key,
    request: edits('request'),
    response,
    cachedRewrite: compileRewrite(browserTtl, response),
    passedRewrite: compileRewrite(undefined, response),
    name:
      names.size === 0
        ? undefined
        : rules.flatMap((rule) => (names.has(rule.name) ? [rule.name] : [])).join(','),
  };
}
