/**
 * The per-request context: what every phase reads and writes, and the two outcomes
 * that logs and metrics report — the lookup result and the insert result.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EdgeError } from '../errors.ts';
import { isHttp2 } from '../http/stream.ts';
import type { CacheStatusParts } from '../observability/cache-status.ts';
import type { FenceClaim } from '../purge/fence.ts';
import type { RuleDecision } from './site-rules.ts';
import type { Site } from './sites.ts';

export type LookupResult =
  | 'hit'
  | 'miss'
  | 'stale'
  | 'stale-while-revalidate'
  | 'stale-if-error'
  | 'revalidated'
  | 'collapsed'
  | 'pass'
  | 'bypass'
  | 'rejected'
  | 'error';

/** 'stored', 'updated', 'not-storable:<reason>', 'aborted-too-large', 'aborted-incomplete', … */
export type InsertResult = string;

const NOT_STORABLE = new Map<string, InsertResult>();

/**
 * `not-storable:<reason>`, one string per reason: built on every pass, the concatenation was a
 * new string that the insert counter's lookup hashed again each time.
 */
export function notStorable(reason: string): InsertResult {
  let result = NOT_STORABLE.get(reason);
  if (result === undefined) {
    result = `not-storable:${reason}`;
    // The reasons are a fixed set (storable.ts, plan.ts); the bound is a guard, not a limit.
    if (NOT_STORABLE.size < 256) NOT_STORABLE.set(reason, result);
  }
  return result;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** performance.now() at arrival. */
  readonly start: number;
  /** Clock time (ms) at arrival. */
  readonly now: number;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /**
   * The client's protocol version as Via writes it (RFC 9110 §7.6.3): '1.0', '1.1' or '2'.
   * On '2' (HTTP/2) the authority comes from `:authority`, responses carry no
   * connection-specific field, and closing after a refusal ends the stream, not the connection.
   */
  readonly protocol: '1.0' | '1.1' | '2';
  /** The peer's address, captured on arrival (the socket may be gone by the time a fill ends). */
  readonly clientAddress: string;
  host: string;
  path: string;
  site: Site | undefined;
  /** Strict-Transport-Security to add to every answer (a TLS request of a site with hsts). */
  hsts: string | undefined;
  /** Primary cache key (absolute URL). */
  key: string;
  /** LMDB key of the primary key. */
  storage: string;
  /** LMDB key of the variant served or stored ('' until known). */
  id: string;
  lookup: LookupResult;
  insert: InsertResult | undefined;
  cacheStatus: CacheStatusParts;
  origin: string | undefined;
  originStatus: number | undefined;
  originMs: number | undefined;
  /** Origins tried for the response (or the error), this one included. */
  originAttempts: number | undefined;
  error: EdgeError | undefined;
  bytes: number;
  /** The completion latch (completion.ts): the log runs once, when the response is done. */
  latch: number;
  /** Set by guard: the request is forwarded unstored, never answered from cache (e.g. fat-request). */
  passReason: string | undefined;
  /** The site's cache rules decided for this request (the rules phase); undefined: none apply. */
  rules: RuleDecision | undefined;
  /** The security rule that acted on this request, for the access log (deny, rate-requests, poison-suspect, …). */
  security: string | undefined;
  /** This request's id (X-Request-Id): a trusted proxy's, or made here; sent to the origin and returned. */
  requestId: string;
  /** Age sent with a stored response (seconds), for the access log. */
  age: number | undefined;
  /** The id of the child tier whose Strata-Tier header verified (receive), else undefined: any client. */
  tierChild: string | undefined;
  /**
   * For a verified child's request: the address its client came from, as the child forwarded it
   * (the last X-Forwarded-For entry); site security judges that address, not the child's.
   */
  tierClient: string | undefined;
  /**
   * The purge fence claims of a verified child tier that this node has not reached (purges it has
   * not applied yet): the request bypasses the stored entry and running fills, and passes them on. Undefined: none.
   */
  fence: FenceClaim[] | undefined;
  /** The client waits for 100 Continue before sending its body (sent once the request is accepted). */
  readonly expectsContinue: boolean;
}

export function createContext(
  req: IncomingMessage,
  res: ServerResponse,
  now: number,
  scheme: 'http' | 'https',
): RequestContext {
  return {
    req,
    res,
    start: performance.now(),
    now,
    method: req.method ?? 'GET',
    scheme,
    protocol: isHttp2(req) ? '2' : req.httpVersionMinor === 0 ? '1.0' : '1.1',
    clientAddress: req.socket?.remoteAddress ?? '',
    host: '',
    path: '',
    site: undefined,
    hsts: undefined,
    key: '',
    storage: '',
    id: '',
    lookup: 'miss',
    insert: undefined,
    cacheStatus: {},
    origin: undefined,
    originStatus: undefined,
    originMs: undefined,
    originAttempts: undefined,
    error: undefined,
    bytes: 0,
    latch: 0,
    passReason: undefined,
    rules: undefined,
    security: undefined,
    requestId: '',
    age: undefined,
    tierChild: undefined,
    tierClient: undefined,
    fence: undefined,
    expectsContinue: req.headers.expect !== undefined && (req.httpVersionMinor === 1 || isHttp2(req)),
  };
}
