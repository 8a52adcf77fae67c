/**
 * relay: runs when the origin's answer is delivered unstored (a pass, or a response triage
 * found not storable). Streams it to the client with Via and Cache-Status added; an origin body cut short
 * reaches the client cut short, never as a clean end. Returns whether the response ended at
 * once (no body) or streams on.
 */
import { originBytesRead } from '../../cache/scavenger.ts';
import { whenDrained } from '../../http/connection-guard.ts';
import { cutShort } from '../../http/cut-short.ts';
import { dropLengthOfBodiless } from '../../http/headers.ts';
import { discardRest } from '../../http/request-body.ts';
import { dropBody, type OriginResponse } from '../../origin/pool.ts';
import type { RequestContext } from '../context.ts';
import type { Edge } from '../edge.ts';
import { bodyIncomplete, discard } from '../fill-driver.ts';
import { asksConditionally, clientHoldsCurrent, withoutContentFields } from '../not-modified.ts';
import { relayedHeaders, sendError } from '../respond.ts';
import { stripFor } from '../tier.ts';

export type Relayed = { kind: 'ended' } | { kind: 'streaming' };

const ENDED: Relayed = { kind: 'ended' };
const STREAMING: Relayed = { kind: 'streaming' };

export function relay(
  edge: Edge,
  ctx: RequestContext,
  response: OriginResponse,
  /** The origin request went without the client's conditionals (a fill): they are evaluated here. */
  unconditional = false,
): Relayed {
  const res = ctx.res;
  const head = dropLengthOfBodiless(
    response.status,
    relayedHeaders(edge, ctx, response.headers, stripFor(edge, ctx)),
  );
  // RFC 9110 §13.2.1: a browser revalidating a page that turned out unstorable (private,
  // Set-Cookie, an Authorization request) gets its 304, as the origin would have answered it.
  const current = unconditional && holdsCurrent(ctx, response);
  if (current || ctx.method === 'HEAD' || response.status === 204 || response.status === 304) {
    const status = current ? 304 : response.status;
    headOnly(ctx, response, status, current ? withoutContentFields(head) : head, unconditional);
    return ENDED;
  }
  // The head goes with the first body byte or the end (node:http sends it no sooner): an origin
  // failing before any byte is answered 502, not with a connection closed on an unsent head.
  let opened = false;
  const open = (): void => {
    if (opened) return;
    opened = true;
    res.writeHead(response.status, head);
  };
  // Piped by hand: stream.pipeline() builds an AbortController and a DOMException per
  // response, a measurable share of the pass path's CPU.
  const body = response.body;
  const resume = () => body.resume();
  body.on('data', (data: Buffer) => {
    open();
    ctx.bytes += data.length;
    originBytesRead(data.length);
    if (!res.write(data)) {
      body.pause();
      whenDrained(res, resume); // a client that takes nothing within the send timeout is cut off
    }
  });
  // `on`, not `once` (wraps and later removes each listener): each event comes once per stream.
  body.on('end', () => {
    open();
    discardRest(ctx.req);
    res.end();
  });
  // An origin body cut short must reach the client cut short, never as a clean end.
  body.on('error', (error) => {
    if (res.destroyed) return; // a stream emits 'error' once (node's errorEmitted)
    if (!opened) return sendError(edge, ctx, bodyIncomplete(error, ctx.origin), false);
    ctx.error = bodyIncomplete(error, ctx.origin);
    cutShort(res, error);
  });
  res.on('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return STREAMING;
}

/**
 * Answers the head alone (a HEAD, a 304, a 204). A fill's body (asked with GET) that nothing
 * stores is not downloaded whole to be thrown away: a HEAD of a 2 GiB no-store object aborts
 * it, the origin connection closed (dropBody).
 */
function headOnly(
  ctx: RequestContext,
  response: OriginResponse,
  status: number,
  head: string[],
  fill: boolean,
): void {
  if (fill) dropBody(response.body);
  else discard(response.body);
  discardRest(ctx.req);
  ctx.res.writeHead(status, head);
  ctx.res.end();
}

/** Whether a client that sent conditionals holds the 200 being relayed. */
function holdsCurrent(ctx: RequestContext, response: OriginResponse): boolean {
  if (response.status !== 200 || !asksConditionally(ctx)) return false;
  const { headers } = response;
  return clientHoldsCurrent(ctx, {
    status: response.status,
    etag: single(headers.etag),
    lastModified: single(headers['last-modified']),
    date: single(headers.date),
    responseTime: ctx.now,
  });
}

/** A field the origin sent once (a repeated validator is no validator). */
function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
