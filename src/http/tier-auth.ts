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
 * target holds no newline, so no request without a fence signs the same text).
 *
 * A child binds the header to the request's Host and to the client it names (`Strata-Client`):
 * newline + `host=<Host>`, then newline + `client=<address>` when it names one (no field value
 * holds a newline). A header captured on the link then verifies for that host and client only,
 * not replayed within the skew against another site of the parent, nor beside another address.
 * A parent still takes a header signed without them (a child of an earlier version): its
 * Strata-Client is then not read.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIER_HEADER = 'strata-tier';

/** What a verified header says: the child's id, and whether it was bound to Host and client. */
export interface TierClaim {
  id: string;
  /** Signed with the request's Host and Strata-Client (false: a child of an earlier version). */
  bound: boolean;
}

/** The Host a request is sent with, and the client the child names in Strata-Client (if any). */
export interface TierBinding {
  host: string;
  client?: string | undefined;
}

function signature(
  secret: string,
  id: string,
  ts: number,
  method: string,
  target: string,
  fence: string | undefined,
  binding: TierBinding | undefined,
): Buffer {
  let text = `${id}|${ts}|${method}|${target}`;
  if (fence !== undefined) text += `\nfence=${fence}`;
  if (binding !== undefined) {
    text += `\nhost=${binding.host}`;
    if (binding.client !== undefined) text += `\nclient=${binding.client}`;
  }
  return createHmac('sha256', secret).update(text).digest();
}

/**
 * The header value a child sends for `method target` at `nowMs`, with the fence it sends (if
 * any), bound to the Host and Strata-Client it sends (`binding`; without, the earlier form).
 */
export function signTier(
  secret: string,
  id: string,
  nowMs: number,
  method: string,
  target: string,
  fence?: string,
  binding?: TierBinding,
): string {
  const ts = Math.floor(nowMs / 1000);
  const sig = signature(secret, id, ts, method, target, fence, binding).toString('base64url');
  return `id=${id}; ts=${ts}; sig=${sig}`;
}

const FORMAT = /^id=([A-Za-z0-9._-]{1,64}); ts=(\d{1,12}); sig=([A-Za-z0-9_-]{43})$/;

/**
 * The claim of a header that verifies for this request, or undefined: malformed, outside the
 * allowed clock skew, or signed with another secret (or for another method, target, fence,
 * Host or client). `fence`: the request's Strata-Fence value, when it carries one (a single
 * field); `binding`: the Host it came with and its Strata-Client. A header signed in the
 * earlier form, without them, verifies with `bound: false`.
 */
export function verifyTier(
  value: string | string[] | undefined,
  secret: string | undefined,
  nowMs: number,
  maxSkewMs: number,
  method: string,
  target: string,
  fence?: string,
  binding?: TierBinding,
): TierClaim | undefined {
  if (secret === undefined || typeof value !== 'string' || value.length > 200) return undefined;
  const match = FORMAT.exec(value);
  if (match === null) return undefined;
  const [, id, tsText, sig] = match as unknown as [string, string, string, string];
  const ts = Number(tsText);
  if (Math.abs(ts * 1000 - nowMs) > maxSkewMs) return undefined;
  const given = Buffer.from(sig, 'base64url');
  const matches = (expected: Buffer) => given.length === expected.length && timingSafeEqual(given, expected);
  if (binding !== undefined && matches(signature(secret, id, ts, method, target, fence, binding)))
    return { id, bound: true };
  if (matches(signature(secret, id, ts, method, target, fence, undefined))) return { id, bound: false };
  return undefined;
}
