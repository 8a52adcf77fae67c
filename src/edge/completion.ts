/**
 * The completion latch: the log phase runs exactly once per request, when the response is
 * done — at once for an answer written whole, else on the response's 'close' — and never
 * while a fill this request leads is still being committed (the line reports its insert
 * result). One number on the context holds the latch; a hit answered at once touches no
 * listener and allocates nothing.
 */
import type { RequestContext } from './context.ts';
import type { Edge } from './edge.ts';
import { logRequest } from './phases/log.ts';

/** Latch bits: logged; waiting for 'close'; held by a running fill. */
export const LOGGED = 1;
const HOOKED = 2;
const HELD = 4;

/** The response was written whole: log now (unless a fill holds the latch). */
export function answered(edge: Edge, ctx: RequestContext): void {
  complete(edge, ctx, true);
}

/** Log when the client response closes (for anything not answered at once). */
export function whenClosed(edge: Edge, ctx: RequestContext): void {
  if ((ctx.latch & (HOOKED | LOGGED)) !== 0) return;
  ctx.latch |= HOOKED;
  ctx.res.once('close', () => complete(edge, ctx, false));
}

/** A fill this request leads is running: the log waits for its insert result. */
export function hold(ctx: RequestContext): void {
  ctx.latch |= HELD;
}

/** The fill ended: log now if the response already closed (else on 'close'). */
export function release(edge: Edge, ctx: RequestContext): void {
  ctx.latch &= ~HELD;
  complete(edge, ctx, false);
}

function complete(edge: Edge, ctx: RequestContext, whole: boolean): void {
  if ((ctx.latch & (LOGGED | HELD)) !== 0 || (!whole && !ctx.res.closed)) return;
  ctx.latch |= LOGGED;
  logRequest(edge, ctx, whole);
}
