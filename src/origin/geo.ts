/**
 * Where a client is: its address mapped to regions, from the configured `networks` (the most
 * specific range wins; any range wins over the database), then a MaxMind DB file. A database
 * record gives its country ISO code, then its continent code, lowercased (`us`, then `na`),
 * most specific first: the selector takes the first region some origin is in.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import type { Reader, Response } from 'maxmind';
import type { GeoConfig } from '../config/schema.ts';
import { forwardedParams } from '../http/headers.ts';

interface Range {
  /** Address bits as a bigint (IPv4 mapped into ::ffff:0:0/96), and the prefix over 128 bits. */
  base: bigint;
  prefix: number;
  region: string;
}

interface GeoRecord {
  region?: string;
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  continent?: { code?: string };
}

export class GeoResolver {
  readonly #ranges: Range[];
  readonly #reader: Reader<Response> | undefined;

  constructor(config: GeoConfig) {
    // Longest prefix first: the first match is the most specific.
    this.#ranges = config.networks
      .map((network) => {
        const [address = '', prefix = ''] = network.cidr.split('/');
        const bits = addressBits(address)!;
        const length = Number(prefix) + (isIPv4(address) ? 96 : 0);
        return { base: bits & mask(length), prefix: length, region: network.region };
      })
      .sort((a, b) => b.prefix - a.prefix);
    // maxmind is read only when a database is configured.
    this.#reader = config.database
      ? new (createRequire(import.meta.url)('maxmind') as typeof import('maxmind')).Reader<Response>(
          readFileSync(config.database),
        )
      : undefined;
  }

  get enabled(): boolean {
    return this.#ranges.length > 0 || this.#reader !== undefined;
  }

  /** The client's regions, most specific first (empty when unknown). */
  regionsOf(address: string): string[] {
    const bits = addressBits(address);
    if (bits === undefined) return [];
    for (const range of this.#ranges) {
      if ((bits & mask(range.prefix)) === range.base) return [range.region];
    }
    const record = this.#record(address);
    if (record === undefined) return [];
    const regions: string[] = [];
    const add = (value: string | undefined) => {
      if (value) regions.push(value.toLowerCase());
    };
    add(record.region);
    add(record.country?.iso_code ?? record.registered_country?.iso_code);
    add(record.continent?.code);
    return regions;
  }

  /**
   * Where the client is for a site's country rules (src/security/ip-rules.ts): a `networks`
   * range gives its region; the database its country ISO code and, as the region, its continent.
   */
  place(address: string): { country?: string | undefined; region?: string | undefined } | undefined {
    const bits = addressBits(address);
    if (bits === undefined) return undefined;
    for (const range of this.#ranges) {
      if ((bits & mask(range.prefix)) === range.base) return { region: range.region };
    }
    const record = this.#record(address);
    if (record === undefined) return undefined;
    const country = record.country?.iso_code ?? record.registered_country?.iso_code;
    return { country, region: record.continent?.code };
  }

  #record(address: string): GeoRecord | undefined {
    if (this.#reader === undefined) return undefined;
    try {
      return (this.#reader.get(unmapped(address)) as GeoRecord | null) ?? undefined;
    } catch {
      return undefined;
    }
  }
}

/** `::ffff:1.2.3.4` (a dual-stack socket's IPv4 client) as `1.2.3.4`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function mask(prefix: number): bigint {
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(128 - prefix);
}

/** An address as 128 bits (IPv4 as ::ffff:a.b.c.d), or undefined if it is not one. */
export function addressBits(input: string): bigint | undefined {
  const address = unmapped(input.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  if (isIPv4(address)) {
    const parts = address.split('.').map(Number);
    return (
      (0xffffn << 32n) | BigInt(((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0)
    );
  }
  if (!address.includes(':')) return undefined;
  let head = address;
  let tail = '';
  if (address.includes('::')) [head = '', tail = ''] = address.split('::');
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  let left = groups(head);
  let right = groups(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4 handled above; 64:ff9b::1.2.3.4 here) is two groups.
  const last = right.at(-1) ?? left.at(-1);
  if (last !== undefined && isIPv4(last)) {
    const p = last.split('.').map(Number);
    const extra = [((p[0]! << 8) | p[1]!).toString(16), ((p[2]! << 8) | p[3]!).toString(16)];
    if (right.length > 0) right = [...right.slice(0, -1), ...extra];
    else left = [...left.slice(0, -1), ...extra];
  }
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (!address.includes('::') && missing !== 0)) return undefined;
  let bits = 0n;
  for (const group of [...left, ...Array<string>(missing).fill('0'), ...right]) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    bits = (bits << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return bits;
}

/**
 * The client of a request as the origin sees it. The node sends X-Forwarded-For and Forwarded
 * as the trusted chain it received, then the peer; the chain is read from the right, skipping
 * trusted proxies: the first untrusted hop is the client. It is X-Forwarded-For's when that
 * holds more than the peer (a trusted proxy extended it), else Forwarded's (a trusted proxy that
 * sends only that one). Never the longer of the two: a balancer extending X-Forwarded-For passes
 * the client's own Forwarded on, and a chain the client wrote would then name any address.
 */
export function clientOf(
  forwardedFor: string | undefined,
  forwarded: string | undefined,
  trusted: (address: string) => boolean,
): string | undefined {
  const xff = forwardedFor === undefined ? [] : forwardedFor.split(',').map((hop) => nodeAddress(hop.trim()));
  const rfc = forwarded === undefined ? [] : forwardedNodes(forwarded);
  const hops = xff.length > 1 || rfc.length === 0 ? xff : rfc;
  if (hops.length === 0) return undefined;
  for (let i = hops.length - 1; i > 0; i--) if (!trusted(hops[i]!)) return hops[i];
  return hops[0];
}

/** The `for=` node of each Forwarded element (RFC 7239 §4), without quotes, brackets or port. */
export function forwardedNodes(value: string): string[] {
  return forwardedParams(value, 'for').map(nodeAddress);
}

/**
 * A hop without brackets or port: `[2001:db8::9]:443` is `2001:db8::9`, `203.0.113.9:4711` is
 * `203.0.113.9` (Forwarded's node syntax, and the X-Forwarded-For some balancers write).
 */
function nodeAddress(node: string): string {
  if (node.startsWith('[')) return node.slice(1, node.indexOf(']'));
  if (node.includes('.') && node.indexOf(':') === node.lastIndexOf(':') && node.includes(':'))
    return node.slice(0, node.indexOf(':'));
  return node;
}
