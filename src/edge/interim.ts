/**
 * Interim (1xx) responses from the origin (RFC 9110 §15.2, RFC 8297): a proxy forwards them to
 * the client before the final response, unless it asked for them itself. They are never stored
 * and their fields never merge into the final response (undici hands them over apart from it).
 *
 * - 103 Early Hints goes out with `writeEarlyHints` (HTTP/1.1 and HTTP/2); Node sends it only
 *   with a `Link` in its strict form, so Link members it would refuse are dropped, and a 103
 *   left without any is not sent.
 * - 102 Processing goes out with `writeProcessing` on HTTP/1.1 (Node's HTTP/2 response has none).
 * - 100 Continue is the node's own business (Expect is answered here and never forwarded), and
 *   Node offers no way to send other 1xx codes: both are dropped.
 * - Nothing goes to an HTTP/1.0 client (§15.2: a server MUST NOT send it a 1xx), nor once the
 *   final response has begun.
 * With collapsing, only the leader's client receives its interim responses: followers join a
 * fill whenever they arrive, and are answered from what is stored, which has no 1xx.
 * A site may also replay a stored page's Link hints as a 103 while it is revalidated
 * (`replayHints`, the site option `earlyHints`).
 */
import { type EntryRecord, storedHeader } from '../cache/record.ts';
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
const NONE: ReadonlySet<string> = new Set();
/** Interim responses forwarded per request at most: an origin sending thousands gets a few through. */
export const MAX_INTERIM = 10;
const forwarded = new WeakMap<RequestContext, number>();

export type InterimHeaders = Record<string, string | string[] | undefined>;

/**
 * The fields of an interim response that may go to the client: not those of the connection,
 * not the fields the node hides from every response (`hidden`: proxy.hideResponseHeaders and
 * the tier fields, edge.stripResponse), and never Set-Cookie (a hint sets no state, RFC 8297 §2).
 */
export function interimFields(
  headers: InterimHeaders,
  hidden: ReadonlySet<string> = NONE,
): Record<string, string | string[]> {
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
    if (name === 'set-cookie' || hidden.has(name)) continue;
    fields[name] = value;
  }
  return fields;
}

/** What Node's writeEarlyHints accepts of one Link member (no spaces in a quoted value). */
const NODE_LINK = /^<[^>]*>(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$/;

/**
 * The members of a Link field, one per array item (Node refuses a comma-joined list), keeping
 * those Node can send; a member it would refuse is dropped rather than the whole hint.
 */
export function linkMembers(link: string | string[] | undefined): string[] {
  if (link === undefined) return [];
  const members: string[] = [];
  for (const line of Array.isArray(link) ? link : [link]) {
    for (const member of line.split(/,\s*(?=<)/)) {
      const trimmed = member.trim();
      if (NODE_LINK.test(trimmed)) members.push(trimmed);
    }
  }
  return members;
}

/**
 * Forwards one interim response to the client of `ctx`, when it may go (at most MAX_INTERIM per
 * request); returns whether it went. `hidden`: response fields the node never delivers.
 */
export function forwardInterim(
  ctx: RequestContext,
  status: number,
  headers: InterimHeaders,
  hidden: ReadonlySet<string> = NONE,
): boolean {
  const res = ctx.res;
  if (ctx.protocol === '1.0' || res.headersSent || res.writableEnded || res.destroyed) return false;
  const sent = forwarded.get(ctx) ?? 0;
  if (sent >= MAX_INTERIM) return false;
  forwarded.set(ctx, sent + 1);
  try {
    if (status === 103) {
      const fields = interimFields(headers, hidden);
      const links = linkMembers(fields.link);
      if (links.length === 0) return false;
      res.writeEarlyHints({ ...fields, link: links });
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

/** Link members worth sending early: what the browser can fetch or connect to ahead of the page. */
const HINT_REL = /;\s*rel\s*=\s*"?[^";,]*\b(?:preload|modulepreload|preconnect)\b/i;

/**
 * The site option `earlyHints`: while the leader's request for a stored page waits for the
 * origin (a revalidation, or a refetch of a stale page), the page's stored `Link` preload,
 * modulepreload and preconnect members go to the client as a 103 (RFC 8297 §2: hints are only
 * hints; the final response's own Link is what counts). Returns whether one was sent.
 */
export function replayHints(ctx: RequestContext, record: EntryRecord): boolean {
  const link = storedHeader(record, 'link');
  if (link === undefined) return false;
  const hints = link.split(/,\s*(?=<)/).filter((member) => HINT_REL.test(member));
  if (hints.length === 0) return false;
  return forwardInterim(ctx, 103, { link: hints.join(', ') });
}
