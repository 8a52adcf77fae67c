/**
 * The http-cache-semantics wrapper. http-cache-semantics 4.3.0 gives the baseline
 * storability verdict of RFC 9111 §3; for a shared edge cache it has faults that are
 * corrected here and in the modules beside this one, each covered by a test in
 * test/unit/cache/policy/semantics.test.ts:
 *
 * 1. Array-valued headers (a field sent twice) make it throw: headers are joined first.
 * 2. It knows nothing of CDN-Cache-Control (RFC 9213): it is shown the targeted field's
 *    directives as Cache-Control, with Expires removed, when a targeted field applies.
 * 3. must-understand with an understood status must ignore no-store (§5.2.2.3).
 * 4. A fresh must-revalidate response is never reused by it: freshness is computed by
 *    freshness.ts and reuse decided by reuse.ts, never by CachePolicy.
 * 5. `immutable` without max-age is given a long lifetime: freshness.ts ignores it.
 * 6. HEAD, 206 and Vary normalization are handled by storable.ts, the lookup phase and vary.ts.
 * 7. It refuses statuses it does not know; §3 lets a shared cache store any final status
 *    with explicit freshness, so it is consulted only for the statuses it understands.
 * 8. It refuses any `private`, even the qualified private="field" form (§5.2.2.7), which a
 *    shared cache may store once the named fields are removed: storable.ts strips them and
 *    the qualified directive is not shown to it.
 */
import CachePolicy from 'http-cache-semantics';

/** Lower-case field name → value (several lines joined with ", "; Set-Cookie kept apart). */
export type HeaderMap = Record<string, string | undefined>;

/** Fault 1: undici and node:http give arrays for repeated fields; CachePolicy expects strings. */
export function toHeaderMap(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const map: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    map[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return map;
}

interface BaselineInput {
  method: string;
  requestHeaders: HeaderMap;
  status: number;
  responseHeaders: HeaderMap;
  response: { directives: ReadonlyMap<string, string>; targeted: boolean };
}

function serializeDirectives(directives: ReadonlyMap<string, string>, ignoreNoStore: boolean): string {
  const parts: string[] = [];
  for (const [name, value] of directives) {
    // Faults 3 and 8 (above): no-store that must-understand overrides, a qualified private.
    if ((name === 'no-store' && ignoreNoStore) || (name === 'private' && value !== '')) continue;
    parts.push(value === '' ? name : `${name}="${value.replace(/["\\]/g, '\\$&')}"`);
  }
  return parts.join(', ');
}

/**
 * The serialized form of parsed directives (shared maps: parseCacheControl keeps them by value),
 * for each setting of ignoreNoStore: made once per map.
 */
const serialized = new WeakMap<ReadonlyMap<string, string>, [string | undefined, string | undefined]>();

function serializedDirectives(directives: ReadonlyMap<string, string>, ignoreNoStore: boolean): string {
  let forms = serialized.get(directives);
  if (forms === undefined) {
    forms = [undefined, undefined];
    serialized.set(directives, forms);
  }
  const at = ignoreNoStore ? 1 : 0;
  const known = forms[at];
  if (known !== undefined) return known;
  const form = serializeDirectives(directives, ignoreNoStore);
  forms[at] = form;
  return form;
}

/**
 * Verdicts already given, by everything CachePolicy.storable() reads (http-cache-semantics 4.3.0:
 * the method, the status, the response's Cache-Control and whether it has Expires, the request's
 * Cache-Control and whether it has Authorization). A site's responses repeat a few shapes, and a
 * CachePolicy costs two header copies and two parses per stored miss. Bounded: cleared when full.
 */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 1024;

/** The RFC 9111 §3 verdict of http-cache-semantics, shown the directives that apply to us. */
export function baselineStorable(input: BaselineInput, ignoreNoStore: boolean): boolean {
  // Faults 2, 3 and 8: present the directives in force, as this cache must read them.
  const cacheControl = serializedDirectives(input.response.directives, ignoreNoStore);
  const expires = input.response.targeted ? undefined : input.responseHeaders.expires;
  const requestCc = input.requestHeaders['cache-control'];
  const memo = `${input.method}\n${input.status}\n${cacheControl}\n${expires ? 1 : 0}\n${
    input.requestHeaders.authorization ? 1 : 0
  }\n${requestCc ?? ''}`;
  const known = verdicts.get(memo);
  if (known !== undefined) return known;
  const responseHeaders: Record<string, string> = {};
  for (const name in input.responseHeaders) {
    const value = input.responseHeaders[name];
    if (value !== undefined) responseHeaders[name] = value;
  }
  responseHeaders['cache-control'] = cacheControl;
  if (input.response.targeted) delete responseHeaders.expires;
  const requestHeaders: Record<string, string> = {};
  for (const name in input.requestHeaders) {
    const value = input.requestHeaders[name];
    if (value !== undefined) requestHeaders[name] = value;
  }
  const policy = new CachePolicy(
    { method: input.method, headers: requestHeaders, url: '/' },
    { status: input.status, headers: responseHeaders },
    { shared: true },
  );
  const verdict = policy.storable();
  if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
  verdicts.set(memo, verdict);
  return verdict;
}
