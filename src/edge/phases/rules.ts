/**
 * rules: runs after guard, on every request of a site that has cache rules (or ignores client
 * directives); a site without any skips it at the cost of one property read. Asks the site's
 * compiled rules (src/edge/site-rules.ts) for this request's decision — one remembered match
 * for a URL seen before — and notes it in the context, where the steps after it apply it at
 * their own decision points (rule-effects.ts, plan.ts, freshness.ts): `pass` is never looked up
 * nor stored, `bypass` is never answered from the cache but stored. Returns true: rules never
 * answer a request themselves.
 */
import type { RequestContext } from '../context.ts';

export function rules(ctx: RequestContext): true {
  const site = ctx.site!.rules;
  if (site === undefined) return true;
  const decision = site.decide(ctx.method, ctx.path, ctx.req.headers, ctx.clientAddress);
  ctx.rules = decision;
  // An unsafe method is passed anyway, and must still invalidate what it changes (RFC 9111 §4.4).
  const safe = ctx.method === 'GET' || ctx.method === 'HEAD';
  if (decision.action === 'pass' && safe) ctx.passReason ??= decision.name;
  else if (decision.action === 'bypass') ctx.lookup = 'bypass';
  return true;
}
