/**
 * The one way a security rule's action is recorded on a request, wherever it acted (guard,
 * the request body's limit in fetch, the store checks in plan and pipeline): its metric, the
 * site's count (/stats) and the access log's `security` field.
 */
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

/** A security rule acted on this request: its metric, the site's count, the access-log field. */
export function noteSecurity(edge: Edge, ctx: RequestContext, rule: string, action: string): void {
  ctx.security = rule;
  edge.metrics.securityBy(rule, action).inc();
  ctx.site?.guard?.note(rule);
}
