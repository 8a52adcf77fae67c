/**
 * A client's If-None-Match / If-Modified-Since against a response the node answers with
 * (RFC 9110 §13.2.1, §15.4.5): whether the client's copy is current, and the header list of
 * the 304 that says so. Used for hits (deliver), for fills whose origin request went without
 * the client's conditionals (insert), and for what such a fill relays unstored (relay).
 * Not a phase.
 */
import { isConditional, notModified } from '../cache/policy/conditional.ts';
import type { RequestContext } from './context.ts';

/** The validators of the response answered: a stored record, or an origin response's fields. */
export interface AnsweredValidators {
  status: number;
  etag: string | undefined;
  lastModified: string | undefined;
  date: string | undefined;
  /** When the response was received (ms). */
  responseTime: number;
}

/** Whether the request sends If-None-Match or If-Modified-Since: only then is there a 304 to judge. */
export function asksConditionally(ctx: RequestContext): boolean {
  return isConditional(ctx.req.headers);
}

/**
 * Whether the request's own conditionals say its copy of this response is current (a 304).
 * Asked once `asksConditionally` holds, so a request without them builds no validators.
 */
export function clientHoldsCurrent(ctx: RequestContext, answered: AnsweredValidators): boolean {
  const { status, etag, lastModified, responseTime, date } = answered;
  return notModified(
    ctx.method,
    ctx.req.headers,
    { status, etag, lastModified, responseTime, size: 0 },
    date,
    ctx.now,
  );
}

const CONTENT_FIELDS: ReadonlySet<string> = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
]);

/** RFC 9110 §15.4.5: a 304 carries the fields a 200 would, minus those describing its content. */
export function withoutContentFields(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!CONTENT_FIELDS.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
