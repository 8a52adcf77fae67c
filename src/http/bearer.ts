/** Bearer credentials (RFC 6750 §2.1) compared with a configured token in constant time. */
import { timingSafeEqual } from 'node:crypto';

export function tokenMatches(expected: string | undefined, header: string | undefined): boolean {
  if (expected === undefined || header === undefined) return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const wanted = Buffer.from(expected);
  // Compare in constant time; lengths differ → compare against itself to spend the same time.
  if (given.length !== wanted.length) {
    timingSafeEqual(wanted, wanted);
    return false;
  }
  return timingSafeEqual(given, wanted);
}
