/**
 * Interim (1xx) responses from the origin (RFC 9110 §15.2, RFC 8297): a proxy forwards them to
 * the client before the final response, unless it asked for them itself. They are never stored
 * and their fields never merge into the final response (undici hands them over apart from it).
 *
 * - 103 Early Hints goes out with `writeEarlyHints` (HTTP/1.1 and HTTP/2); Node sends it only
 *   when it carries a valid `Link`, so a 103 without one is dropped.
 * - 102 Processing goes out with `writeProcessing` on HTTP/1.1 (Node's HTTP/2 response has none).
 * - 100 Continue is the node's own business (Expect is answered here and never forwarded), and
 *   Node offers no way to send other 1xx codes: both are dropped.
 * - Nothing goes to an HTTP/1.0 client (§15.2: a server MUST NOT send it a 1xx), nor once the
 *   final response has begun.
 * With collapsing, only the leader's client receives its interim responses: followers join a
 * fill whenever they arrive, and are answered from what is stored, which has no 1xx.
 */
import type { RequestContext } from './context.ts';

/** Fields that belong to one connection (RFC 9110 §7.6.1), never forwarded in a 1xx. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

export type InterimHeaders = Record<string, string | string[] | undefined>;

/** The fields of an interim response that may go to the client. */
export function interimFields(headers: InterimHeaders): Record<string, string | string[]> {
  const connection = headers.connection;
  const named = new Set(
    (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== ''),
  );
  const fields: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || !TOKEN.test(name)) continue;
    fields[name] = value;
  }
  return fields;
}

/** Forwards one interim response to the client of `ctx`, when it may go; returns whether it went. */
export function forwardInterim(ctx: RequestContext, status: number, headers: InterimHeaders): boolean {
  const res = ctx.res;
  if (ctx.protocol === '1.0' || res.headersSent || res.writableEnded || res.destroyed) return false;
  try {
    if (status === 103) {
      const fields = interimFields(headers);
      if (fields.link === undefined) return false;
      res.writeEarlyHints(fields);
      return true;
    }
    if (status === 102) {
      const processing = (res as { writeProcessing?: () => void }).writeProcessing;
      if (ctx.protocol === '2' || typeof processing !== 'function') return false;
      processing.call(res);
      return true;
    }
  } catch {
    // Node refuses a Link it cannot send safely (ERR_INVALID_ARG_VALUE): the hint is dropped.
  }
  return false;
}
