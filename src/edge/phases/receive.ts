/**
 * receive: first phase of every request. Validates the target and Host (400 and close
 * on anything ambiguous), then resolves the site (421 when no site claims the Host).
 * Returns false when it has answered the request itself.
 */

import { EdgeError } from '../../errors.ts';
import { checkRequestTarget } from '../../http/request-target.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { sendError } from '../respond.ts';

export function receive(edge: Edge, ctx: RequestContext): boolean {
  const target = checkRequestTarget(ctx.req);
  if (!target.ok) {
    ctx.lookup = 'rejected';
    sendError(edge, ctx, new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', target.reason), true);
    return false;
  }
  ctx.host = target.host;
  ctx.path = target.path;
  ctx.site = edge.sites.resolve(target.host);
  if (ctx.site === undefined) {
    ctx.lookup = 'rejected';
    sendError(
      edge,
      ctx,
      new EdgeError('EDGE_ERR_CLIENT_MISDIRECTED', `no site for host ${target.host}`),
      false,
    );
    return false;
  }
  return true;
}
