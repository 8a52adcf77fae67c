/**
 * Request ids (X-Request-Id): a trusted proxy's id is kept, so one id follows a request
 * through every tier; otherwise one is made here — a random prefix per process and a
 * counter, unique without a random draw per request.
 */
import { randomBytes } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What an incoming id may look like: printable, no spaces or quotes, at most 128 characters. */
const ACCEPTED = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

const PREFIX = randomBytes(6).toString('base64url');
let counter = 0;

/**
 * `incoming` is the request's X-Request-Id, kept when `trusted(peer)` says its peer is a
 * trusted proxy (asked only when there is an id to keep: no closure per request).
 */
export function requestIdFor(
  incoming: string | string[] | undefined,
  trusted: (peer: string) => boolean,
  peer: string,
): string {
  if (typeof incoming === 'string' && ACCEPTED.test(incoming) && trusted(peer)) return incoming;
  counter = counter === Number.MAX_SAFE_INTEGER ? 1 : counter + 1;
  return `${PREFIX}-${counter.toString(36)}`;
}
