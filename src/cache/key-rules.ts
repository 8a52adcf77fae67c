/**
 * The cache-key part of a site's rules: which query parameters count (include / exclude,
 * sorted, or none), and request values added to the key (header and cookie values, the
 * client's region). Pure; the rules are compiled by src/edge/site-rules.ts.
 */
import { byParamName } from './key.ts';

export interface QueryKeyRule {
  /** Only parameters whose name passes (include), or every one but those (exclude). */
  keep?: ((name: string) => boolean) | undefined;
  sort: boolean;
  /** The whole query is left out. */
  ignore: boolean;
}

export interface KeyRule {
  query?: QueryKeyRule | undefined;
  headers?: readonly string[] | undefined;
  cookies?: readonly string[] | undefined;
  region: boolean;
}

/** The request target as the key sees it: the query filtered, sorted or dropped. */
export function keyTarget(target: string, rule: QueryKeyRule): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const path = target.slice(0, q);
  if (rule.ignore) return path;
  let params = target.slice(q + 1).split('&');
  const keep = rule.keep;
  if (keep !== undefined) {
    params = params.filter((param) => {
      if (param === '') return false;
      const eq = param.indexOf('=');
      return keep(decodedParam(eq < 0 ? param : param.slice(0, eq)));
    });
  }
  if (rule.sort) params.sort(byParamName);
  return params.length === 0 ? path : `${path}?${params.join('&')}`;
}

/** A query name or value as a form decodes it (`+` is a space); as it came when it does not decode. */
function decodedParam(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * The values of the query parameters a rule leaves out of the key (`ignore`, or not kept): the
 * origin still reads them, so a response reflecting one must not be shared under the key
 * without it (security/poison.ts). Each as it came and decoded; a value holding `;` also in
 * its parts, and a part `name=value` by its value: an origin that splits parameters on `;` as
 * well as `&` (older CGI and Java stacks) reads `?utm_content=x;callback=evil` as a second
 * parameter, `callback`, and may reflect `evil` alone.
 */
export function droppedQueryValues(target: string, rule: QueryKeyRule): string[] {
  const q = target.indexOf('?');
  if (q < 0 || (!rule.ignore && rule.keep === undefined)) return [];
  const out: string[] = [];
  for (const param of target.slice(q + 1).split('&')) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (!rule.ignore && rule.keep!(decodedParam(param.slice(0, eq)))) continue;
    const value = param.slice(eq + 1);
    const decoded = decodedParam(value);
    out.push(value);
    if (decoded !== value) out.push(decoded);
    if (value.includes(';')) pushParts(out, value);
    if (decoded !== value && decoded.includes(';')) pushParts(out, decoded);
  }
  return out;
}

/** The `;`-separated parts of a value, and the value of each part that reads `name=value` (decoded too). */
function pushParts(out: string[], value: string): void {
  for (const part of value.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const inner = eq < 0 ? part : part.slice(eq + 1);
    out.push(part);
    if (inner !== part && inner !== '') out.push(inner);
    const decoded = decodedParam(inner);
    if (decoded !== inner) out.push(decoded);
  }
}

/**
 * What a rule adds to the key, after the URL and a space (a request target holds no space, so
 * no URL can produce such a key): `h:name=value`, `c:name=value`, `r:region`, joined by `&`,
 * values percent-encoded. '' when the rule adds nothing.
 */
export function keyExtras(
  rule: KeyRule,
  header: (name: string) => string | undefined,
  cookie: (name: string) => string | undefined,
  region: () => string | undefined,
): string {
  const parts: string[] = [];
  for (const name of rule.headers ?? []) parts.push(`h:${name}=${encodeURIComponent(header(name) ?? '')}`);
  for (const name of rule.cookies ?? []) parts.push(`c:${name}=${encodeURIComponent(cookie(name) ?? '')}`);
  if (rule.region) parts.push(`r:${encodeURIComponent(region() ?? '')}`);
  return parts.length === 0 ? '' : ` ${parts.join('&')}`;
}
