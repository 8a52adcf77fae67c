/**
 * relay: runs when the origin's answer is delivered unstored (a pass, or a response triage
 * found not storable). Streams it to the client with Via and Cache-Status added; an origin body cut short
 * reaches the client cut short, never as a clean end. Returns whether the response ended at
 * once (no body) or streams on.
 */
import { originBytesRead } from '../../cache/scavenger.ts';
import { whenDrained } from '../../http/connection-guard.ts';
import type { OriginResponse } from '../../origin/pool.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { discard } from '../fill-driver.ts';
import { relayedHeaders } from '../respond.ts';
import { stripFor } from '../tier.ts';

export type Relayed = { kind: 'ended' } | { kind: 'streaming' };

const ENDED: Relayed = { kind: 'ended' };
const STREAMING: Relayed = { kind: 'streaming' };

export function relay(edge: Edge, ctx: RequestContext, response: OriginResponse): Relayed {
  const res = ctx.res;
  res.writeHead(response.status, relayedHeaders(edge, ctx, response.headers, stripFor(edge, ctx)));
  if (ctx.method === 'HEAD' || response.status === 204 || response.status === 304) {
    discard(response.body);
    res.end();
    return ENDED;
  }
  // Piped by hand: stream.pipeline() builds an AbortController and a DOMException per
  // response, a measurable share of the pass path's CPU.
  const body = response.body;
  const resume = () => body.resume();
  body.on('data', (data: Buffer) => {
    ctx.bytes += data.length;
    originBytesRead(data.length);
    if (!res.write(data)) {
      body.pause();
      whenDrained(res, resume); // a client that takes nothing within the send timeout is cut off
    }
  });
  body.once('end', () => res.end());
  // An origin body cut short must reach the client cut short, never as a clean end.
  body.once('error', (error) => res.destroy(error));
  res.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return STREAMING;
}
