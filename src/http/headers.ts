/**
 * Header hygiene for a proxy (RFC 9110 §7.6): hop-by-hop fields removed in both
 * directions, Via added, X-Forwarded-* and Forwarded (RFC 7239) set.
 */
import type { IncomingHttpHeaders } from 'node:http';

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

/** Field names listed in Connection, lower case. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const tokens = new Set<string>();
  for (const line of Array.isArray(value) ? value : [value]) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) tokens.add(name);
    }
  }
  return tokens;
}

export function isHopByHop(name: string, listed: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || (listed?.has(name) ?? false);
}

/** Copies end-to-end fields of a node:http request into a plain object for undici. */
export function endToEndRequestHeaders(
  headers: IncomingHttpHeaders,
  drop: ReadonlySet<string>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    if (isHopByHop(name, listed) || drop.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  // RFC 9110 §7.6.1 TE: "trailers" may be forwarded; nothing else of TE is.
  return out;
}

/** Flat [name, value, ...] list of a response's end-to-end fields, minus `drop`. */
export function endToEndResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: ReadonlySet<string>,
): string[] {
  // Names may arrive in any case here (they are lower-cased below), Connection's too.
  const connection = Object.keys(headers).find((name) => name.toLowerCase() === 'connection');
  const listed = connectionTokens(connection === undefined ? undefined : headers[connection]);
  const out: string[] = [];
  for (const name in headers) {
    const lower = name.toLowerCase();
    if (isHopByHop(lower, listed) || drop.has(lower)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
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
 */
export function forwardingHeaders(input: ForwardingInput): Record<string, string> {
  const { headers } = input;
  const priorXff = input.trusted ? joinField(headers['x-forwarded-for']) : undefined;
  const priorForwarded = input.trusted ? joinField(headers.forwarded) : undefined;
  const element = `for=${quoteForwardedNode(input.clientAddress)};host="${input.host}";proto=${input.proto}`;
  return {
    'x-forwarded-for': priorXff ? `${priorXff}, ${input.clientAddress}` : input.clientAddress,
    'x-forwarded-proto': (input.trusted && joinField(headers['x-forwarded-proto'])) || input.proto,
    'x-forwarded-host': (input.trusted && joinField(headers['x-forwarded-host'])) || input.host,
    forwarded: priorForwarded ? `${priorForwarded}, ${element}` : element,
  };
}

function joinField(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}
