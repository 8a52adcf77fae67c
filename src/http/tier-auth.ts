/**
 * The Strata-Tier request header: how a child tier proves to its parent that a request comes
 * from a node of the fleet, so that the parent trusts its X-Forwarded-For and passes it the
 * tier fields (docs/tiers.md). The value is
 *
 *   Strata-Tier: id=<child>; ts=<unix seconds>; sig=<base64url HMAC-SHA256(secret, id|ts|method|target)>
 *
 * signed with the fleet's shared `tiers.secret`. A parent accepts it only within `maxSkew` of
 * its own clock and compares the signature in constant time; anything else is ignored (never
 * an error: the request is then served as any client's).
 *
 * A request that carries a purge fence (`Strata-Fence`, purge/fence.ts) has the fence's value
 * signed too: the signed text becomes `id|ts|method|target` + newline + `fence=<value>` (a
 * target holds no newline, so no request without a fence signs the same text). A request
 * without one signs exactly what it always did.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIER_HEADER = 'strata-tier';

/** What a verified header says: the child's id. */
export interface TierClaim {
  id: string;
}

function signature(
  secret: string,
  id: string,
  ts: number,
  method: string,
  target: string,
  fence: string | undefined,
): Buffer {
  const text = `${id}|${ts}|${method}|${target}`;
  return createHmac('sha256', secret)
    .update(fence === undefined ? text : `${text}\nfence=${fence}`)
    .digest();
}

/** The header value a child sends for `method target` at `nowMs`, with the fence it sends (if any). */
export function signTier(
  secret: string,
  id: string,
  nowMs: number,
  method: string,
  target: string,
  fence?: string,
): string {
  const ts = Math.floor(nowMs / 1000);
  return `id=${id}; ts=${ts}; sig=${signature(secret, id, ts, method, target, fence).toString('base64url')}`;
}

const FORMAT = /^id=([A-Za-z0-9._-]{1,64}); ts=(\d{1,12}); sig=([A-Za-z0-9_-]{43})$/;

/**
 * The claim of a header that verifies for this request, or undefined: malformed, outside the
 * allowed clock skew, or signed with another secret (or for another method, target or fence).
 * `fence`: the request's Strata-Fence value, when it carries one (a single field).
 */
export function verifyTier(
  value: string | string[] | undefined,
  secret: string | undefined,
  nowMs: number,
  maxSkewMs: number,
  method: string,
  target: string,
  fence?: string,
): TierClaim | undefined {
  if (secret === undefined || typeof value !== 'string' || value.length > 200) return undefined;
  const match = FORMAT.exec(value);
  if (match === null) return undefined;
  const [, id, tsText, sig] = match as unknown as [string, string, string, string];
  const ts = Number(tsText);
  if (Math.abs(ts * 1000 - nowMs) > maxSkewMs) return undefined;
  const expected = signature(secret, id, ts, method, target, fence);
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return { id };
}
