/**
 * WebSocket tunnels (docs/origins.md, WebSocket tunnels). A handshake the listener took as an
 * upgrade (http/upgrade.ts) goes through the checks every request gets — receive (Host → site),
 * guard (address and country rules, limits, the request rate), rules, the loop and admin-token
 * refusals, the origin-bound rate — then, within `proxy.maxTunnels`, to an origin the site's
 * pool selects, with the forwarding fields any origin request carries. A 101 from the origin is
 * relayed and the two connections are joined (http/splice.ts) until either closes or both stay
 * idle for `proxy.tunnelIdleTimeout`; any other answer is relayed as a pass is, never stored.
 * Nothing of a tunnel touches the cache: it is never looked up, stored, nor collapsed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EdgeError } from '../errors.ts';
import { dropLengthOfBodiless } from '../http/headers.ts';
import { type SpliceResult, splice } from '../http/splice.ts';
import { switchProtocols, type UpgradeHandler } from '../http/upgrade.ts';
import type { UpgradeResponse } from '../origin/upgrade.ts';
import { keyScheme } from './client.ts';
import { whenClosed } from './completion.ts';
import { createContext, type RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { originRequestHeaders, refusal } from './phases/fetch.ts';
import { admitToOrigin, guard } from './phases/guard.ts';
import { hash } from './phases/hash.ts';
import { logTunnel } from './phases/log.ts';
import { receive } from './phases/receive.ts';
import { relay } from './phases/relay.ts';
import { rules } from './phases/rules.ts';
import { relayedHeaders, sendError } from './respond.ts';
import { stripFor, tierFieldsFor } from './tier.ts';

/** The listener's handler of WebSocket handshakes, for one scheme (like the pipeline's). */
export function tunnelHandler(edge: Edge, scheme: 'http' | 'https'): UpgradeHandler {
  return (req: IncomingMessage, res: ServerResponse, head: Buffer) => {
    const ctx = createContext(req, res, edge.now(), scheme);
    // Until it is answered and closed, or becomes a tunnel (open): a drain waits for it.
    let settled!: () => void;
    const answered = new Promise<void>((resolve) => {
      settled = () => {
        edge.tunnels.answering.delete(res);
        resolve();
      };
    });
    edge.tunnels.answering.set(res, answered);
    res.once('close', settled);
    if (!receive(edge, ctx) || !guard(edge, ctx) || !rules(ctx)) return whenClosed(edge, ctx);
    whenClosed(edge, ctx);
    // RFC 9211: the cache was not used for this request (as a bypass rule's pass reads).
    ctx.lookup = 'bypass';
    ctx.cacheStatus.fwd = 'bypass';
    ctx.cacheStatus.detail = 'upgrade';
    hash(ctx, keyScheme(edge, ctx));
    const refused = refusal(edge, ctx) ?? withContent(ctx) ?? overCap(edge);
    if (refused !== undefined) return sendError(edge, ctx, refused, true);
    if (!admitToOrigin(edge, ctx)) return;
    const client = ctx.res.socket as Socket;
    edge.tunnels.pending.add(client);
    handshake(edge, ctx, head, settled)
      .catch((error: unknown) => {
        edge.log.error({ err: error, url: ctx.key }, 'WebSocket tunnel failed inside the node');
        sendError(edge, ctx, new EdgeError('EDGE_ERR_INTERNAL', 'internal error', { cause: error }), true);
      })
      .finally(() => edge.tunnels.pending.delete(client));
  };
}

/**
 * A handshake that declares content: node:http hands whatever follows its head over as the
 * tunnel's first bytes, so the content could only reach the origin after its 101, where it
 * would be read as WebSocket frames (and a declared length it never gets leaves the origin
 * waiting for it). Refused rather than framed two ways.
 */
function withContent(ctx: RequestContext): EdgeError | undefined {
  const { headers } = ctx.req;
  const length = headers['content-length'];
  if (headers['transfer-encoding'] === undefined && (length === undefined || length === '0'))
    return undefined;
  return new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'a WebSocket handshake carries no content');
}

/**
 * `proxy.maxTunnels` reached (open tunnels and handshakes on their way count alike), or the node
 * stopping: a tunnel opened now would be cut at the end of the drain grace, or hold it open.
 */
function overCap(edge: Edge): EdgeError | undefined {
  if (edge.tunnels.stopping) {
    edge.metrics.tunnels.labels('refused').inc();
    return new EdgeError('EDGE_ERR_TUNNEL_LIMIT', 'the node is stopping; connect again');
  }
  const max = edge.config.proxy.maxTunnels;
  if (max === 0 || edge.tunnels.open.size + edge.tunnels.pending.size < max) return undefined;
  edge.metrics.tunnels.labels('refused').inc();
  return new EdgeError('EDGE_ERR_TUNNEL_LIMIT', 'too many WebSocket connections; retry later');
}

/** Sends the handshake to the origin; relays its answer, and on a 101 opens the tunnel. */
async function handshake(edge: Edge, ctx: RequestContext, head: Buffer, opened: () => void): Promise<void> {
  const headers = originRequestHeaders(edge, ctx, { fill: false });
  headers.connection = 'upgrade';
  headers.upgrade = websocketToken(ctx.req.headers.upgrade!);
  const gone = new AbortController();
  ctx.res.once('close', () => gone.abort());
  let response: UpgradeResponse;
  try {
    response = await ctx.site!.pool.upgrade({
      method: 'GET',
      path: ctx.path,
      host: ctx.host,
      key: ctx.key,
      headers,
      signal: gone.signal,
      tier: tierFieldsFor(edge, ctx, 'GET'),
    });
  } catch (error) {
    const failure = error as EdgeError & { attempts?: number };
    ctx.origin = failure.origin;
    ctx.originAttempts = failure.attempts;
    // A client that left is not an origin that failed to answer.
    edge.metrics.tunnels.labels(gone.signal.aborted ? 'abandoned' : 'failed').inc();
    return sendError(edge, ctx, failure, true);
  }
  ctx.origin = response.origin;
  ctx.originStatus = response.status;
  ctx.originMs = response.ms;
  ctx.originAttempts = response.attempts;
  ctx.cacheStatus.fwdStatus = response.status;
  edge.metrics.originRequestsBy(response.origin, `${Math.floor(response.status / 100)}xx`).inc();
  edge.metrics.originLatency.labels(response.origin).observe(response.ms / 1000);
  const tunnel = response.tunnel;
  if (tunnel === undefined) {
    edge.metrics.tunnels.labels('declined').inc();
    return void relay(edge, ctx, response);
  }
  if (gone.signal.aborted) return void tunnel.socket.destroy();
  opened();
  open(edge, ctx, response, tunnel, head);
}

/** Relays the 101 and joins the client's connection to the origin's. */
function open(
  edge: Edge,
  ctx: RequestContext,
  response: UpgradeResponse,
  tunnel: NonNullable<UpgradeResponse['tunnel']>,
  head: Buffer,
): void {
  // What follows the 101 head is the tunnel's, whatever length the origin declared.
  const fields = dropLengthOfBodiless(101, relayedHeaders(edge, ctx, response.headers, stripFor(edge, ctx)));
  const upgrade = response.headers.upgrade;
  fields.unshift('Upgrade', String(upgrade ?? ctx.req.headers.upgrade), 'Connection', 'Upgrade');
  const client = switchProtocols(ctx.res, fields);
  if (tunnel.head.length > 0) client.write(tunnel.head);
  if (head.length > 0) tunnel.socket.write(head);
  const joined = splice(client, tunnel.socket, edge.config.proxy.tunnelIdleTimeout);
  const { tunnels, metrics } = edge;
  tunnels.open.add(joined);
  metrics.tunnels.labels('opened').inc();
  metrics.tunnelsOpen.inc();
  void joined.done.then((result: SpliceResult) => {
    tunnels.open.delete(joined);
    metrics.tunnelsOpen.dec();
    result.toOrigin += head.length;
    result.toClient += tunnel.head.length;
    metrics.tunnelBytes.labels('to-origin').inc(result.toOrigin);
    metrics.tunnelBytes.labels('to-client').inc(result.toClient);
    logTunnel(edge, ctx, result);
  });
}

/**
 * The websocket member of the client's Upgrade list, as the client wrote it: the node tunnels
 * that protocol only, so the origin is not offered another it may pick (a 101 to h2c is
 * answered 502, upgrade.ts).
 */
function websocketToken(upgrade: string): string {
  for (const member of upgrade.split(',')) {
    const token = member.trim();
    if (token.toLowerCase().split('/')[0] === 'websocket') return token;
  }
  return upgrade;
}
