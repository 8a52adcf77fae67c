/**
 * Parses Cache-Status (RFC 9211 §2): a Structured Fields list, one member per cache, ordered from
 * the cache closest to the origin to the one closest to the client. Each member is a cache name
 * (token or string) with parameters (hit, fwd, fwd-status, ttl, stored, collapsed, key, detail).
 */

export type ParamValue = boolean | number | string;

export interface CacheStatusMember {
  cache: string;
  params: Record<string, ParamValue>;
}

/** Splits on `sep` outside double-quoted strings. */
function splitOutsideQuotes(value: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i] ?? '';
    if (quoted && char === '\\') {
      current += char + (value[i + 1] ?? '');
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (!quoted && char === sep) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

function bareValue(raw: string): ParamValue {
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
    return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  if (raw === '?1') return true;
  if (raw === '?0') return false;
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

export function parseCacheStatus(header: string | null): CacheStatusMember[] {
  if (!header) return [];
  return splitOutsideQuotes(header, ',')
    .map((member) => member.trim())
    .filter((member) => member.length > 0)
    .map((member) => {
      const [name = '', ...rawParams] = splitOutsideQuotes(member, ';').map((part) => part.trim());
      const params: Record<string, ParamValue> = {};
      for (const rawParam of rawParams) {
        const eq = rawParam.indexOf('=');
        if (eq < 0) params[rawParam] = true;
        else params[rawParam.slice(0, eq).trim()] = bareValue(rawParam.slice(eq + 1).trim());
      }
      return { cache: String(bareValue(name)), params };
    });
}
