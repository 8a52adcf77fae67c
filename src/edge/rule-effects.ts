/**
 * The effects of a request's rule decision (site-rules.ts) where the pipeline makes its own
 * decisions: the client's directives (lookup, gate, collapse, plan), the cache key (hash),
 * the origin request (fetch) and the client response (deliver, relay, fills). Each is a no-op
 * when the request has no decision. Not a phase.
 */
import type { Directives } from '../cache/policy/cache-control.ts';
import { requestDirectives } from '../cache/policy/reuse.ts';
import type { HeaderMap } from '../cache/policy/semantics.ts';
import type { RequestContext } from './context.ts';
import type { HeaderEdits, ResponseRewrite, RuleDecision } from './site-rules.ts';

/** The request's cache directives, unless the rules say not to read them (clientCacheControl: ignore). */
export function clientDirectives(ctx: RequestContext): Directives | undefined {
  if (ctx.rules?.ignoreClient) return undefined;
  const headers = ctx.req.headers;
  return requestDirectives(headers['cache-control'], headers.pragma as string | undefined);
}

/** The request fields the store decision reads, without the directives the rules ignore. */
export function storeRequestHeaders(ctx: RequestContext, headers: HeaderMap): HeaderMap {
  if (!ctx.rules?.ignoreClient) return headers;
  const { 'cache-control': _cc, pragma: _pragma, ...rest } = headers;
  return rest;
}

/** Rewrites of the origin request (lower-case field names, as fetch builds them). */
export function rewriteRequest(
  headers: Record<string, string | string[]>,
  edits: readonly HeaderEdits[] | undefined,
): void {
  if (edits === undefined) return;
  for (const edit of edits) {
    for (const name of edit.remove) delete headers[name];
    for (const [name, value] of edit.set) headers[name.toLowerCase()] = value;
    for (const [name, value] of edit.append) {
      const key = name.toLowerCase();
      const existing = headers[key];
      headers[key] =
        existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
  }
}

/**
 * Rewrites of a client response's header list (name, value, name, value …), precompiled with
 * the decision: one pass drops the fields the rules remove or replace, then their fields are
 * added. `cached`: the response comes from, or goes into, the cache — browserTtl replaces its
 * Cache-Control (and drops Expires) only then; a passed response keeps the origin's.
 */
export function rewriteResponse(
  list: string[],
  decision: RuleDecision | undefined,
  cached: boolean,
): string[] {
  const rewrite = cached ? decision?.cachedRewrite : decision?.passedRewrite;
  if (rewrite === undefined) return list;
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!rewrite.drop.has(list[i]!.toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  for (const field of rewrite.add) out.push(field);
  return out;
}

/**
 * Stored header lists (never changed once built: a refresh makes a new one) with their last
 * rewrite: a hit on a hot entry copies the rewritten list instead of rewriting it again.
 */
const rewritten = new WeakMap<readonly string[], { rewrite: ResponseRewrite; list: string[] }>();

/**
 * A stored header list as the rules show it to clients: the list itself, or its rewrite (kept
 * per list), never to be changed by the caller — the same array on every hit of an entry.
 */
export function sharedForClient(
  list: readonly string[],
  decision: RuleDecision | undefined,
): readonly string[] {
  const rewrite = decision?.cachedRewrite;
  if (rewrite === undefined) return list;
  let known = rewritten.get(list);
  if (known?.rewrite !== rewrite) {
    known = { rewrite, list: rewriteResponse(list as string[], decision, true) };
    rewritten.set(list, known);
  }
  return known.list;
}

/** A fresh copy of a stored header list for one client response, rewritten as the rules say. */
export function copyForClient(list: readonly string[], decision: RuleDecision | undefined): string[] {
  return sharedForClient(list, decision).slice();
}

/** Fields never delivered from a response a rule made storable by ignoring its Set-Cookie. */
export function strippedOnStore(ctx: RequestContext): readonly string[] {
  return ctx.rules?.overrides?.ignore?.has('set-cookie') ? ['set-cookie'] : [];
}
