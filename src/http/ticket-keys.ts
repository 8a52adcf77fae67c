/**
 * TLS session ticket keys. A ticket is encrypted with the server's ticket keys; a client
 * presenting it resumes without a full handshake only where the same keys are in use. With
 * `--workers`, the primary makes the keys and hands them to every worker (at start, and on
 * each rotation), so a ticket issued by one worker resumes on any other.
 *
 * node:tls takes one key set at a time: a rotation ends the tickets issued before it (their
 * clients make one full handshake). Keys are rotated every TICKET_ROTATION_MS, bounding how
 * long a stolen key decrypts recorded TLS 1.2 sessions (forward secrecy of resumed sessions).
 */
import { randomBytes } from 'node:crypto';

/** node:tls ticket keys: 16 bytes name, 16 bytes HMAC secret, 16 bytes AES key. */
export const TICKET_KEYS_LENGTH = 48;
export const TICKET_ROTATION_MS = 12 * 60 * 60 * 1000;

export function newTicketKeys(): Buffer {
  return randomBytes(TICKET_KEYS_LENGTH);
}

/** Keys from their base64 form (environment, cluster message); undefined when malformed. */
export function parseTicketKeys(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const keys = Buffer.from(text, 'base64');
  return keys.length === TICKET_KEYS_LENGTH ? keys : undefined;
}
