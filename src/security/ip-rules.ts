/** Address lists (`node:net` BlockList) and the country/region rule of a site. */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Where an address is: ISO country code and/or a region code (e.g. EU), upper case. */
export interface GeoPlace {
  country?: string | undefined;
  region?: string | undefined;
}

/** The node's GeoIP lookup (src/origin/geo.ts provides it); undefined: the address is not placed. */
export type GeoLookup = (address: string) => GeoPlace | undefined;

/** A BlockList of addresses and CIDR ranges; undefined when `entries` is empty. */
export function addressList(entries: readonly string[]): ((address: string) => boolean) | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (address: string) => {
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  };
}

export interface CountryRules {
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
  unknown?: 'allow' | 'deny' | undefined;
}

/** Whether the country rule admits an address; an unplaced address follows `unknown`. */
export function countryRule(
  rules: CountryRules,
  lookup: GeoLookup | undefined,
): (address: string) => boolean {
  const allow = rules.allow ? new Set(rules.allow) : undefined;
  const deny = new Set(rules.deny ?? []);
  const unknown = (rules.unknown ?? (allow ? 'deny' : 'allow')) === 'allow';
  return (address) => {
    const place = lookup?.(address);
    const country = place?.country?.toUpperCase();
    const region = place?.region?.toUpperCase();
    if (country === undefined && region === undefined) return unknown;
    if (allow)
      return (country !== undefined && allow.has(country)) || (region !== undefined && allow.has(region));
    return !((country !== undefined && deny.has(country)) || (region !== undefined && deny.has(region)));
  };
}

/**
 * A GeoLookup from a `networks` list (CIDR → country/region), the shape the origin-selection
 * GeoIP config uses for its static table; first matching entry wins.
 */
export function networksLookup(
  networks: readonly { cidr: string; country?: string; region?: string }[],
): GeoLookup {
  const lists = networks.map((entry) => ({ check: addressList([entry.cidr])!, place: entry }));
  return (address) => {
    for (const { check, place } of lists) {
      if (check(address)) return { country: place.country, region: place.region };
    }
    return undefined;
  };
}
