/**
 * Who the client is and how it reached us. The client of a request: behind trusted proxies
 * (`proxy.trustedProxies`), the first untrusted hop of X-Forwarded-For or Forwarded (the address
 * the nearest trusted proxy saw), else the peer. The access log names it, and site security
 * judges it: a load balancer in front of the node is not the client its deny lists, country
 * rules and rate limits are about.
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

/**
 * The scheme the client used, as the cache key spells it: behind a trusted proxy or a verified
 * child tier (whose forwarding fields fetch keeps alike) that says so in X-Forwarded-Proto (its
 * first value: the hop nearest the client), `http` or `https`; else the listener's. The origin
 * reads the same field (fetch forwards a trusted peer's), and may answer the two schemes
 * differently (a redirect to https for plain http): one key for both would serve an http answer
 * to https clients. A child keys its https clients' requests `https://…`: its parent, reached
 * over plain http, must too.
 */
export function keyScheme(edge: Edge, ctx: RequestContext): 'http' | 'https' {
  const proto = ctx.req.headers['x-forwarded-proto'];
  if (proto === undefined || (ctx.tierChild === undefined && !edge.trusted(ctx.clientAddress)))
    return ctx.scheme;
  const first = (Array.isArray(proto) ? proto[0]! : proto).split(',')[0]!.trim().toLowerCase();
  return first === 'https' ? 'https' : first === 'http' ? 'http' : ctx.scheme;
}
