/**
 * Validation of what decides where a request goes: the Host header and the request
 * target (RFC 9112 §3.2, RFC 9110 §7.2). Anything ambiguous is refused with 400, and
 * the connection closed, so that no two parties can disagree on the target.
 */
import type { IncomingMessage } from 'node:http';

/** reg-name / IPv4 / [IPv6] with an optional port (RFC 3986 §3.2.2). */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9])?\.?)(?::\d{1,5})?$/;

export type TargetCheck = { ok: true; host: string; path: string } | { ok: false; reason: string };

export function checkRequestTarget(req: IncomingMessage): TargetCheck {
  let hostCount = 0;
  let host: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      hostCount++;
      host = raw[i + 1];
    }
  }
  if (hostCount === 0) return { ok: false, reason: 'missing Host header' };
  if (hostCount > 1) return { ok: false, reason: 'more than one Host header' };
  if (host === undefined || !HOST.test(host)) return { ok: false, reason: 'invalid Host header' };
  const port = /:(\d+)$/.exec(host);
  if (port && Number(port[1]) > 65535) return { ok: false, reason: 'invalid Host header' };
  const target = req.url ?? '';
  if (target === '*') {
    if (req.method !== 'OPTIONS') return { ok: false, reason: 'asterisk-form target outside OPTIONS' };
    return { ok: true, host, path: '*' };
  }
  if (target.startsWith('/')) return { ok: true, host, path: target };
  if (/^https?:\/\//i.test(target)) {
    // RFC 9112 §3.2.2: absolute-form; its authority must agree with Host.
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return { ok: false, reason: 'invalid absolute-form target' };
    }
    if (url.username || url.password) return { ok: false, reason: 'userinfo in request target' };
    const authority = target.slice(target.indexOf('//') + 2).split(/[/?#]/)[0]!;
    if (withoutDefaultPort(authority, url.protocol) !== withoutDefaultPort(host, url.protocol)) {
      return { ok: false, reason: 'absolute-form target disagrees with Host' };
    }
    return { ok: true, host, path: url.pathname + url.search };
  }
  return { ok: false, reason: 'invalid request target' };
}

/** Authorities compare case-insensitively, with the scheme's default port implied (RFC 9110 §4.2.3). */
function withoutDefaultPort(authority: string, protocol: string): string {
  const lower = authority.toLowerCase();
  const port = protocol === 'https:' ? ':443' : ':80';
  return lower.endsWith(port) ? lower.slice(0, -port.length) : lower;
}
