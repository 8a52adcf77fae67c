/**
 * Validation of what decides where a request goes and how its body is framed: the request
 * line's version, the method, Transfer-Encoding, the Host header and the request target
 * (RFC 9112 §2.3, §3.2, §6.1, RFC 9110 §7.2). Anything ambiguous is refused, and the
 * connection closed, so that no two parties can disagree on the target or the framing.
 *
 * What passes comes out in one canonical spelling — the authority lower-cased, without a
 * trailing dot or the scheme's default port; the target without a fragment or an empty
 * query — used alike for routing, the cache key and the origin request.
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../errors.ts';
import { isHttp2 } from './stream.ts';

/** reg-name / IPv4 / [IPv6] with an optional port (RFC 3986 §3.2.2). */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9])?\.?)(?::(\d{1,5}))?$/;

/**
 * The method policy. CONNECT is refused (the node is no forward proxy; node:http hands CONNECT to
 * the listener, which answers it the same way) and TRACE too (it would echo the request,
 * credentials included, back through every tier). Every other method is forwarded; the
 * unsafe ones pass uncached and invalidate the target (RFC 9111 §4.4).
 */
export const REFUSED_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE']);
/** The Allow list sent with a 405 (RFC 9110 §15.5.6). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

export type TargetCheck =
  | { ok: true; host: string; path: string }
  | { ok: false; code: ErrorCode; reason: string };

function refuse(reason: string, code: ErrorCode = 'EDGE_ERR_CLIENT_BAD_REQUEST'): TargetCheck {
  return { ok: false, code, reason };
}

export function checkRequestTarget(req: IncomingMessage, scheme: 'http' | 'https' = 'http'): TargetCheck {
  if (isHttp2(req)) return checkHttp2Target(req, scheme);
  // RFC 9112 §2.3: only HTTP/1.x is spoken over HTTP/1 framing (HTTP/2 has its own preface).
  if (req.httpVersionMajor !== 1) return refuse('unsupported HTTP version', 'EDGE_ERR_CLIENT_VERSION');
  if (REFUSED_METHODS.has(req.method ?? '')) {
    return refuse(`method ${req.method} not allowed`, 'EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED');
  }
  let hostCount = 0;
  let host: string | undefined;
  let codings: string | undefined;
  let expect: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hostCount++;
      host = raw[i + 1];
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      codings = codings === undefined ? raw[i + 1]! : `${codings},${raw[i + 1]!}`;
    } else if (name.length === 6 && name.toLowerCase() === 'expect') {
      expect = expect === undefined ? raw[i + 1]! : `${expect},${raw[i + 1]!}`;
    }
  }
  if (codings !== undefined) {
    const framing = checkFraming(req, codings);
    if (framing !== undefined) return framing;
  }
  if (hostCount > 1) return refuse('more than one Host header');
  if (hostCount === 0) {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused; HTTP/1.0 never required it.
    if (req.httpVersionMinor !== 0) return refuse('missing Host header');
    host = hostOf10(req);
    if (host === undefined) return refuse('missing Host header');
  }
  const authority = host === undefined ? undefined : canonicalAuthority(host, scheme);
  if (authority === undefined) return refuse('invalid Host header');
  // RFC 9110 §10.1.1: 100-continue is the only expectation; an HTTP/1.0 request's is ignored.
  if (expect !== undefined && req.httpVersionMinor !== 0 && !expectsOnlyContinue(expect))
    return refuse('expectation not supported', 'EDGE_ERR_CLIENT_EXPECTATION');
  const target = req.url ?? '';
  if (target === '*') {
    if (req.method !== 'OPTIONS') return refuse('asterisk-form target outside OPTIONS');
    return { ok: true, host: authority, path: '*' };
  }
  if (target.startsWith('/')) return { ok: true, host: authority, path: canonicalTarget(target) };
  if (/^https?:\/\//i.test(target)) {
    // RFC 9112 §3.2.2: absolute-form; its authority must agree with Host.
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return refuse('invalid absolute-form target');
    }
    if (url.username || url.password) return refuse('userinfo in request target');
    const named = target.slice(target.indexOf('//') + 2).split(/[/?#]/)[0]!;
    const urlScheme = url.protocol === 'https:' ? 'https' : 'http';
    if (canonicalAuthority(named, urlScheme) !== canonicalAuthority(host!, urlScheme)) {
      return refuse('absolute-form target disagrees with Host');
    }
    return { ok: true, host: authority, path: canonicalTarget(url.pathname + url.search) };
  }
  return refuse('invalid request target');
}

/**
 * Whether an Expect value (its fields joined by commas) asks for 100-continue and nothing else:
 * at least one member, every member 100-continue (RFC 9110 §10.1.1; empty members ignored,
 * §5.6.1). Any other value is answered 417, which the RFC allows for a member other than
 * 100-continue. node:http reads any value containing the 100-continue token as waiting for a
 * 100 (`100-continue, foo` included): what passes here it reads so too, and what it reads so
 * but is refused here is answered without the 100, so node:http closes the connection after
 * the answer, and nothing pipelined behind it is dispatched (respond.ts, connection-guard.ts).
 */
export function expectsOnlyContinue(value: string): boolean {
  let members = 0;
  for (const member of value.split(',')) {
    const name = member.trim().toLowerCase();
    if (name === '') continue;
    if (name !== '100-continue') return false;
    members++;
  }
  return members > 0;
}

/**
 * The authority of an HTTP/1.0 request sent without Host (RFC 9112 §3.3, reconstructing the
 * target URI): an absolute-form target's own, else the local address and port the connection
 * reached (the node has no configured default name), which a catch-all site answers. The
 * port is kept even when it is the scheme's default; canonicalAuthority drops it then.
 */
function hostOf10(req: IncomingMessage): string | undefined {
  const target = req.url ?? '';
  if (/^https?:\/\//i.test(target)) return target.slice(target.indexOf('//') + 2).split(/[/?#]/)[0];
  const socket = req.socket as { localAddress?: string; localPort?: number } | undefined;
  const address = socket?.localAddress;
  if (address === undefined || socket?.localPort === undefined) return undefined;
  // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return `${plain.includes(':') ? `[${plain}]` : plain}:${socket.localPort}`;
}

/**
 * An HTTP/2 request (RFC 9113 §8.3.1): the authority is `:authority` (a Host field, when both
 * are sent, must name the same one), the target is `:path` in origin form. node:http2 has
 * already refused connection-specific fields and malformed pseudo-header fields.
 */
function checkHttp2Target(req: IncomingMessage, scheme: 'http' | 'https'): TargetCheck {
  if (REFUSED_METHODS.has(req.method ?? '')) {
    return refuse(`method ${req.method} not allowed`, 'EDGE_ERR_CLIENT_METHOD_NOT_ALLOWED');
  }
  const headers = req.headers;
  const pseudo = headers[':authority'];
  const host = headers.host;
  const raw = typeof pseudo === 'string' ? pseudo : host;
  if (raw === undefined) return refuse('missing :authority');
  if (Array.isArray(raw)) return refuse('more than one Host header');
  const authority = canonicalAuthority(raw, scheme);
  if (authority === undefined) return refuse('invalid :authority');
  if (
    typeof pseudo === 'string' &&
    host !== undefined &&
    canonicalAuthority(String(host), scheme) !== authority
  )
    return refuse('Host disagrees with :authority');
  const target = req.url ?? '';
  if (target === '*') {
    if (req.method !== 'OPTIONS') return refuse('asterisk-form target outside OPTIONS');
    return { ok: true, host: authority, path: '*' };
  }
  if (!target.startsWith('/')) return refuse('invalid :path');
  return { ok: true, host: authority, path: canonicalTarget(target) };
}

/**
 * RFC 9112 §6.1: chunked is the only transfer coding implemented, so anything else is
 * refused with 501 (a dropped coding would hand the origin a body it cannot decode);
 * Transfer-Encoding in an HTTP/1.0 request is faulty framing.
 */
function checkFraming(req: IncomingMessage, codings: string): TargetCheck | undefined {
  if (req.httpVersionMinor === 0) return refuse('Transfer-Encoding in an HTTP/1.0 request');
  if (codings.trim().toLowerCase() !== 'chunked') {
    return refuse(`transfer coding "${codings}" not implemented`, 'EDGE_ERR_CLIENT_TRANSFER_CODING');
  }
  return undefined;
}

/**
 * The one spelling of an authority (RFC 9110 §4.2.3, RFC 3986 §6.2.2–6.2.3): lower case, the
 * trailing dot of a fully qualified name dropped, the port as a plain number and omitted when
 * it is the scheme's default. Undefined when it is not a valid authority.
 */
export function canonicalAuthority(authority: string, scheme: 'http' | 'https'): string | undefined {
  // A node sees few distinct Host values: remember them (bounded), so a hit costs a lookup.
  const seen = scheme === 'https' ? SEEN_HTTPS : SEEN_HTTP;
  const known = seen.get(authority);
  if (known !== undefined || seen.has(authority)) return known;
  const canonical = spell(authority, scheme);
  if (seen.size >= SEEN_LIMIT) seen.clear();
  seen.set(authority, canonical);
  return canonical;
}

const SEEN_LIMIT = 1024;
const SEEN_HTTP = new Map<string, string | undefined>();
const SEEN_HTTPS = new Map<string, string | undefined>();

function spell(authority: string, scheme: 'http' | 'https'): string | undefined {
  const match = HOST.exec(authority);
  if (!match) return undefined;
  let name = match[1]!.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const digits = match[2];
  if (digits === undefined) return name;
  const port = Number(digits);
  if (port > 65535) return undefined;
  return port === (scheme === 'https' ? 443 : 80) ? name : `${name}:${port}`;
}

/**
 * The target without a fragment (never part of a request, RFC 9110 §7.1) or an empty query,
 * its path normalized as RFC 3986 §6.2.2 says (what a normalizing origin reads): a
 * percent-encoded unreserved character decoded (`%77p-admin` is `/wp-admin`), other escapes in
 * upper case, and the `.` and `..` segments removed (§5.2.4; `/static/../account` is
 * `/account`). The cache key, the site's rules and block lists, and the origin request all see
 * this one path, so no rule can match a spelling the origin reads as another path.
 */
export function canonicalTarget(target: string): string {
  const hash = target.indexOf('#');
  let path = hash < 0 ? target : target.slice(0, hash);
  if (path.endsWith('?') && path.indexOf('?') === path.length - 1) path = path.slice(0, -1);
  const query = path.indexOf('?');
  const part = query < 0 ? path : path.slice(0, query);
  if (!part.includes('%') && !part.includes('/.')) return path;
  return normalizedPath(part) + (query < 0 ? '' : path.slice(query));
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

function normalizedPath(path: string): string {
  const decoded = path.includes('%')
    ? path.replace(/%([0-9A-Fa-f]{2})/g, (encoded, hex: string) => {
        const char = String.fromCharCode(Number.parseInt(hex, 16));
        return UNRESERVED.test(char) ? char : encoded.toUpperCase();
      })
    : path;
  return decoded.includes('/.') ? withoutDotSegments(decoded) : decoded;
}

/** RFC 3986 §5.2.4 for an absolute path: `.` segments dropped, `..` removing the one before. */
function withoutDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i]!;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      // A dot segment at the end names a directory: the path keeps its trailing slash.
      if (i === last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return `/${out.join('/')}`;
}
