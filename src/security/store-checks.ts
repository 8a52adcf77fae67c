/**
 * The security checks on a response about to be stored, asked where the store plan is
 * decided: web cache deception (a Content-Type that disagrees with the path's static
 * extension) and cache poisoning (a response reflecting an unkeyed request value, in its
 * headers now, or in the first 64 KiB of its body as it streams).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { deceptive } from './deception.ts';
import { ReflectionScanner, reflectedInHeaders, unkeyedQueryValues, unkeyedValues } from './poison.ts';

export interface StoreCheckInput {
  path: string;
  host: string;
  requestHeaders: IncomingHttpHeaders;
  /** The client is a trusted proxy (its forwarding claims reach the origin). */
  trusted: boolean;
  responseHeaders: Record<string, string | string[] | undefined>;
  poisonCheck: boolean;
  deceptionCheck: boolean;
  /** Request fields (lower case) the site's origin may reflect harmlessly. */
  poisonIgnore?: ReadonlySet<string> | undefined;
  /** Values of query parameters the cache key leaves out (key-rules.ts droppedQueryValues). */
  unkeyedQuery?: readonly string[] | undefined;
}

export type StoreCheck =
  | { reason: 'deception' | 'poison-suspect' }
  | { reason: undefined; scanner: ReflectionScanner | undefined };

const CLEAN: StoreCheck = { reason: undefined, scanner: undefined };

export function checkStore(input: StoreCheckInput): StoreCheck {
  const response = input.responseHeaders;
  if (input.deceptionCheck) {
    const type = response['content-type'];
    if (deceptive(input.path, Array.isArray(type) ? type[0] : type)) return { reason: 'deception' };
  }
  if (!input.poisonCheck) return CLEAN;
  const values = requestValues(input, response.vary);
  if (values.length === 0) return CLEAN;
  if (reflectedInHeaders(values, response)) return { reason: 'poison-suspect' };
  return { reason: undefined, scanner: new ReflectionScanner(values) };
}

/**
 * Whether a request carries unkeyed, non-default values at all: such a request leads no
 * collapsed fill (its response is only known clean once its body was scanned).
 */
export function carriesUnkeyedValues(
  requestHeaders: IncomingHttpHeaders,
  host: string,
  trusted: boolean,
  ignore?: ReadonlySet<string>,
): boolean {
  return unkeyedValues(requestHeaders, host, trusted, [], ignore).length > 0;
}

function requestValues(input: StoreCheckInput, vary: string | string[] | undefined): string[] {
  const fields =
    vary === undefined
      ? []
      : (Array.isArray(vary) ? vary.join(',') : vary).split(',').map((name) => name.trim().toLowerCase());
  const values = unkeyedValues(input.requestHeaders, input.host, input.trusted, fields, input.poisonIgnore);
  return input.unkeyedQuery === undefined || input.unkeyedQuery.length === 0
    ? values
    : [...values, ...unkeyedQueryValues(input.unkeyedQuery, input.host)];
}
