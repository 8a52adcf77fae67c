/**
 * Header hygiene for a proxy (RFC 9110 §7.6): hop-by-hop fields removed in both
 * directions, Via and CDN-Loop added, X-Forwarded-* and Forwarded (RFC 7239) set, and the
 * unkeyed fields origins honour (forwarding claims, URL rewrites, method overrides) kept
 * away from the origin unless a trusted proxy vouches for them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

/** RFC 9110 §7.6.1 and the fields everyone treats as hop-by-hop. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Token sets of the Connection values seen ("keep-alive" on nearly every response): read-only. */
const knownTokens = new Map<string, ReadonlySet<string>>();
const MAX_KNOWN_TOKENS = 64;

/** Field names listed in Connection, lower case (a shared set: never modified by callers). */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') {
    let known = knownTokens.get(value);
    if (known === undefined) {
      known = parseTokens([value]);
      if (knownTokens.size < MAX_KNOWN_TOKENS) knownTokens.set(value, known);
    }
    return known;
  }
  return parseTokens(value);
}

function parseTokens(value: readonly string[]): ReadonlySet<string> {
  const tokens = new Set<string>();
  for (const line of value) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) tokens.add(name);
    }
  }
  return tokens;
}

export function isHopByHop(name: string, listed: ReadonlySet<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || (listed?.has(name) ?? false);
}

/**
 * Forwarding claims beyond X-Forwarded-For/-Proto/-Host and Forwarded (which are overwritten
 * for untrusted peers): frameworks build absolute links and redirects from them, yet they are
 * not part of the cache key, so one client could poison what every other client gets. Removed
 * from requests of untrusted peers; a trusted proxy's values pass.
 */
export const FORWARDING_CLAIMS: readonly string[] = [
  'x-forwarded-scheme',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-ssl',
  'x-forwarded-protocol',
  'x-forwarded',
  'x-url-scheme',
  'front-end-https',
  'x-host',
  'x-original-host',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'client-ip',
  'x-original-forwarded-for',
];

/**
 * Fields that make an origin serve another URL or act as another method (IIS/Symfony URL
 * rewrites, method overrides). Never forwarded on a request whose answer may be stored — the
 * stored answer would be for a URL or method not in its key — and from untrusted peers never
 * at all.
 */
export const REQUEST_REWRITES: readonly string[] = [
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
];

/** Removes the unkeyed fields above that this peer may not send (see each list). */
export function dropUnkeyedClaims(
  headers: Record<string, string | string[]>,
  trusted: boolean,
  mayStore: boolean,
): void {
  if (!trusted) for (const name of FORWARDING_CLAIMS) if (name in headers) delete headers[name];
  if (!trusted || mayStore) for (const name of REQUEST_REWRITES) if (name in headers) delete headers[name];
}

/** Copies end-to-end fields of a node:http request into a plain object for undici. */
export function endToEndRequestHeaders(
  headers: IncomingHttpHeaders,
  drop: ReadonlySet<string>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    // HTTP/2 pseudo-header fields (:method, :path, :authority, :scheme) are not fields.
    if (name.charCodeAt(0) === 58 || isHopByHop(name, listed) || drop.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  // RFC 9110 §7.6.1 TE: "trailers" may be forwarded; nothing else of TE is.
  return out;
}

/**
 * Flat [name, value, ...] list of a response's end-to-end fields, minus `drop`, and minus Via:
 * whoever passes the response on adds one Via of its own, the received value with its entry
 * appended (appendVia). Copied as well, the received value went out twice (a parent tier's
 * `1.1 shield` read `1.1 shield, 1.1 shield, 1.1 edge`), and a 304's Via replaced the stored one.
 */
export function endToEndResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: ReadonlySet<string>,
): string[] {
  // Names may arrive in any case here (they are lower-cased below), Connection's too.
  const listed = connectionTokens(headers.connection ?? headers[connectionName(headers)]);
  const out: string[] = [];
  for (const name in headers) {
    const lower = name.toLowerCase();
    if (lower === 'via' || isHopByHop(lower, listed) || drop.has(lower)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}

/**
 * RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with a
 * status code of 1xx (Informational) or 204 (No Content)". Removes it from a header list in place
 * (a relayed 204, or the 101 that opens a WebSocket tunnel).
 */
export function dropLengthOfBodiless(status: number, list: string[]): string[] {
  if (status !== 204 && (status < 100 || status > 199)) return list;
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (list[i]!.length === 14 && list[i]!.toLowerCase() === 'content-length') list.splice(i, 2);
  }
  return list;
}

/** The name Connection has in `headers` when it is not lower case ('' when absent). */
function connectionName(headers: Record<string, unknown>): string {
  for (const name in headers) if (name.length === 10 && name.toLowerCase() === 'connection') return name;
  return '';
}

/** Via (RFC 9110 §7.6.3): the received protocol and our pseudonym, appended. */
export function appendVia(
  existing: string | string[] | undefined,
  httpVersion: string,
  pseudonym: string,
): string {
  const entry = `${httpVersion} ${pseudonym}`;
  if (existing === undefined) return entry;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${entry}`;
}

/**
 * CDN-Loop (RFC 8586 §2): the received entries, then ours — our name, with `node=<id>` naming
 * this very node (nodes of one name, such as tiers left with the default, differ in it).
 */
export function appendCdnLoop(existing: string | string[] | undefined, name: string, node: string): string {
  const prior = joinField(existing);
  const entry = `${name}; node=${node}`;
  return prior ? `${prior}, ${entry}` : entry;
}

export interface LoopPasses {
  /** Passes through nodes of this name: CDN-Loop cdn-ids (RFC 8586) or Via pseudonyms
   * (RFC 9110 §7.6.3), whichever count is larger (some origins drop one of the fields). */
  named: number;
  /** Whether CDN-Loop names this very node (`node=<id>`): the request came back here. */
  own: boolean;
}

const NONE: LoopPasses = { named: 0, own: false };

export function loopPasses(headers: IncomingHttpHeaders, name: string, node: string): LoopPasses {
  const cdnLoop = headers['cdn-loop'];
  const via = headers.via;
  if (cdnLoop === undefined && via === undefined) return NONE;
  const wanted = name.toLowerCase();
  let inLoop = 0;
  let own = false;
  for (const entry of listEntries(cdnLoop)) {
    const [id, ...params] = entry.split(';');
    if (id!.trim().toLowerCase() !== wanted) continue;
    inLoop++;
    if (params.some((param) => param.trim() === `node=${node}`)) own = true;
  }
  let inVia = 0;
  for (const entry of listEntries(via)) {
    const by = entry.trim().split(/\s+/, 3)[1]?.toLowerCase();
    if (by === wanted) inVia++;
  }
  return { named: Math.max(inLoop, inVia), own };
}

function listEntries(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value).split(',');
}

export interface ForwardingInput {
  clientAddress: string;
  /** Whether the immediate peer is a configured trusted proxy. */
  trusted: boolean;
  proto: 'http' | 'https';
  host: string;
  headers: IncomingHttpHeaders;
}

function quoteForwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

/**
 * X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239). Incoming values are kept and
 * extended only when the peer is trusted; otherwise they are replaced, so a client
 * cannot claim another address.
 *
 * A trusted proxy that extended X-Forwarded-For is read from it, as the client is judged
 * (origin/geo.ts clientOf): its hops become the Forwarded elements before this node's, the last
 * of them with the proto the proxy was reached by (X-Forwarded-Proto). An origin reading
 * Forwarded first then sees `proto=https` behind a balancer that ends TLS, not this node's own
 * `proto=http` beside `X-Forwarded-Proto: https` (it redirected https clients to https for ever,
 * and the redirect was stored), nor a Forwarded field the client wrote and the balancer passed on.
 */
export function forwardingHeaders(input: ForwardingInput): Record<string, string> {
  const { headers } = input;
  const priorXff = input.trusted ? joinField(headers['x-forwarded-for']) : undefined;
  const priorForwarded = !input.trusted
    ? undefined
    : priorXff
      ? forwardedFromXff(priorXff, lastValue(headers['x-forwarded-proto']), input.host)
      : joinField(headers.forwarded);
  const element = `for=${quoteForwardedNode(input.clientAddress)};host="${input.host}";proto=${input.proto}`;
  return {
    'x-forwarded-for': priorXff ? `${priorXff}, ${input.clientAddress}` : input.clientAddress,
    'x-forwarded-proto': (input.trusted && joinField(headers['x-forwarded-proto'])) || input.proto,
    'x-forwarded-host': (input.trusted && joinField(headers['x-forwarded-host'])) || input.host,
    forwarded: priorForwarded ? `${priorForwarded}, ${element}` : element,
  };
}

/** The hops of a trusted X-Forwarded-For as Forwarded elements; the last (the proxy's client) with host and proto. */
function forwardedFromXff(xff: string, proto: string | undefined, host: string): string {
  const hops = xff.split(',').map((hop) => hop.trim());
  const last = hops.length - 1;
  return hops
    .map((hop, i) => {
      const node = `for=${forwardedNode(hop)}`;
      if (i < last) return node;
      return `${node};host="${host}"${proto !== undefined && PROTO.test(proto) ? `;proto=${proto.toLowerCase()}` : ''}`;
    })
    .join(', ');
}

const PROTO = /^[a-z][a-z0-9+.-]{0,15}$/i;

/**
 * An X-Forwarded-For hop as an RFC 7239 node: an address (IPv6 in brackets, with a port quoted),
 * else `unknown`: hops before the trusted proxy's are whatever the client wrote.
 */
function forwardedNode(hop: string): string {
  if (isIPv4(hop) || isIPv6(hop)) return quoteForwardedNode(hop);
  const withPort = /^(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d{1,5})$/i.exec(hop);
  if (withPort !== null) {
    const v6 = withPort[1];
    if (v6 !== undefined && isIPv6(v6)) return `"[${v6}]:${withPort[3]}"`;
    if (withPort[2] !== undefined && isIPv4(withPort[2])) return `"${withPort[2]}:${withPort[3]}"`;
  }
  return 'unknown';
}

/** The value of parameter `name` (`for`, `host`, ...) of each Forwarded element that has one, unquoted (RFC 7239 §4). */
export function forwardedParams(field: string | string[] | undefined, name: string): string[] {
  const prefix = `${name}=`;
  const values: string[] = [];
  for (const element of (joinField(field) ?? '').split(',')) {
    for (const pair of element.split(';')) {
      const trimmed = pair.trim();
      if (trimmed.slice(0, prefix.length).toLowerCase() !== prefix) continue;
      values.push(trimmed.slice(prefix.length).replace(/^"|"$/g, ''));
      break;
    }
  }
  return values;
}

function lastValue(value: string | string[] | undefined): string | undefined {
  const joined = joinField(value);
  return joined?.slice(joined.lastIndexOf(',') + 1).trim();
}

function joinField(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}
