/**
 * The client of a request: behind trusted proxies (`proxy.trustedProxies`), the first untrusted
 * hop of X-Forwarded-For or Forwarded (the address the nearest trusted proxy saw), else the
 * peer. The access log names it, and site security judges it: a load balancer in front of the
 * node is not the client its deny lists, country rules and rate limits are about.
 */
import { isIP } from 'node:net';
import { clientOf } from '../origin/geo.ts';
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';

export function realClient(edge: Edge, ctx: RequestContext): string {
  const peer = ctx.clientAddress;
  const { 'x-forwarded-for': xff, forwarded } = ctx.req.headers;
  if ((xff === undefined && forwarded === undefined) || !edge.trusted(peer)) return peer;
  const chain = (value: string | string[] | undefined, own: string) =>
    value === undefined ? undefined : `${Array.isArray(value) ? value.join(', ') : value}, ${own}`;
  const client = clientOf(
    chain(xff, peer),
    chain(forwarded, `for=${peer.includes(':') ? `"[${peer}]"` : peer}`),
    edge.trusted,
  );
  // A hop that is no address (a proxy passing on what its client wrote) names nobody.
  return client !== undefined && isIP(client) !== 0 ? client : peer;
}
