/**
 * Cache-Control parsing (RFC 9111 §5.2) and the targeted fields of RFC 9213.
 * Pure: no I/O.
 */

/** Directive name (lower case) → argument ('' when it has none). */
export type Directives = ReadonlyMap<string, string>;

const EMPTY: Directives = new Map();

/**
 * RFC 9111 §5.2: "Cache directives are identified by a token, to be compared
 * case-insensitively, and have an optional argument that can use both token and
 * quoted-string syntax." §4.2.1: with a directive present more than once, "either
 * the first occurrence should be used or the response should be considered stale";
 * the first occurrence is used here. Whitespace between two directives separates them as a
 * comma would. A member that is not a directive is skipped up to the next comma; the
 * directives after it still count.
 */
export function parseCacheControl(value: string | undefined): Directives {
  if (!value) return EMPTY;
  const known = parsed.get(value);
  if (known !== undefined) return known;
  const directives = parseDirectives(value);
  if (value.length <= PARSED_VALUE_MAX) {
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(value, directives);
  }
  return directives;
}

/**
 * Directives already parsed, by field value: a site's responses (and its clients' requests) repeat
 * a few Cache-Control values, parsed on every miss and pass. The maps are shared: never mutated
 * (Directives is read-only). Bounded: cleared when full; long values are not kept.
 */
const parsed = new Map<string, Directives>();
const PARSED_MAX = 512;
const PARSED_VALUE_MAX = 256;

function parseDirectives(value: string): Directives {
  const directives = new Map<string, string>();
  // A directive ends at a comma, a semicolon, the end, or whitespace before the next directive:
  // origins write `private no-store` and `max-age=600 private`, and a restriction must never be
  // lost for a missing comma (read as junk, `private no-cache` let one user's page be shared).
  const pattern =
    /\s*([^\s=,;"]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,;"]*)))?(?:\s*[,;]|\s*$|\s+(?=[^\s=,;"]))/y;
  let at = 0;
  while (at < value.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(value);
    if (match === null || match[0] === '') {
      // Junk is skipped up to the next comma or whitespace outside a quoted string, so that
      // it never hides the directives after it (a no-store after junk must still be seen).
      at = nextMember(value, at);
      continue;
    }
    const name = match[1]!.toLowerCase();
    const argument = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
    if (!directives.has(name)) directives.set(name, argument);
    at = pattern.lastIndex;
  }
  return directives;
}

/**
 * The index just past the next comma or whitespace at or after `from` that is not inside a
 * quoted string (whitespace separates directives too: see parseCacheControl).
 */
function nextMember(value: string, from: number): number {
  let quoted = false;
  for (let i = from; i < value.length; i++) {
    const char = value[i]!;
    if (quoted && char === '\\') i++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && (char === ',' || /\s/.test(char))) return i + 1;
  }
  return value.length;
}

/** Splits a list at commas outside quoted strings. */
export function splitMembers(value: string): string[] {
  const members: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (quoted && char === '\\') i++;
    else if (char === '"') quoted = !quoted;
    else if (char === ',' && !quoted) {
      members.push(value.slice(start, i));
      start = i + 1;
    }
  }
  members.push(value.slice(start));
  return members;
}

/** Every occurrence of a directive, for detecting conflicting duplicates. */
export function countDirective(value: string | undefined, name: string): number {
  if (!value) return 0;
  let count = 0;
  for (const part of value.split(',')) {
    const token = part.split('=')[0]?.trim().toLowerCase();
    if (token === name) count++;
  }
  return count;
}

/**
 * RFC 9111 §1.2.2 delta-seconds: a non-negative integer. Returns undefined for a
 * missing or invalid value. "If a cache receives a delta-seconds value greater than
 * the greatest integer it can represent ... the cache MUST consider the value to be
 * 2147483648."
 */
export function deltaSeconds(directives: Directives, name: string): number | undefined {
  const raw = directives.get(name);
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return Math.min(value, 2147483648);
}

/** True when a directive is present with an argument that is not valid delta-seconds. */
export function invalidDeltaSeconds(directives: Directives, name: string): boolean {
  const raw = directives.get(name);
  return raw !== undefined && !/^\d+$/.test(raw);
}

/**
 * RFC 9213 §2.1: CDN-Cache-Control is a Structured Field Dictionary; a field that
 * fails to parse is ignored as a whole ("MUST ignore ... invalid").
 */
export function parseTargetedField(value: string | undefined): Directives | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  const directives = new Map<string, string>();
  for (const member of splitMembers(trimmed)) {
    const match =
      /^\s*([a-z*][a-z0-9_\-.*]*)(?:=(?:(-?\d{1,15}(?:\.\d{1,3})?)|"((?:[^"\\]|\\.)*)"|([A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*)|\?([01])))?((?:\s*;\s*[a-z*][a-z0-9_\-.*]*(?:=[^;,]*)?)*)\s*$/.exec(
        member,
      );
    if (!match) return undefined;
    const name = match[1]!;
    // RFC 9213 §2.2: a directive whose value has the wrong type is ignored — the delta-seconds
    // directives take an Integer, nothing else (RFC 8941 §3.3.1).
    if (INTEGER_DIRECTIVES.has(name) && (match[2] === undefined || !/^\d+$/.test(match[2]))) {
      directives.delete(name);
      continue;
    }
    const argument =
      match[2] ?? match[3]?.replace(/\\(.)/g, '$1') ?? match[4] ?? (match[5] === '0' ? 'false' : '');
    // Dictionary: the last instance of a key wins (RFC 8941 §4.2.2).
    directives.set(name, argument);
  }
  // Nothing left that applies: the field is not a valid, non-empty value; fall back (§2.1).
  return directives.size > 0 ? directives : undefined;
}

const INTEGER_DIRECTIVES: ReadonlySet<string> = new Set([
  'max-age',
  's-maxage',
  'stale-while-revalidate',
  'stale-if-error',
]);
