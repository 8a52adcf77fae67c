/** What steps of the pipeline hand to one another: a stored response found, an origin's answer. */
import type { ContentCoding } from '../cache/policy/accept-encoding.ts';
import type { Directives } from '../cache/policy/cache-control.ts';
import type { Reuse } from '../cache/policy/reuse.ts';
import type { EntryRecord } from '../cache/record.ts';
import type { EdgeError } from '../errors.ts';
import type { OriginResponse } from '../origin/pool.ts';

/** A stored response the lookup found for a request, with the verdict on reusing it. */
export interface Found {
  kind: 'found';
  id: string;
  record: EntryRecord;
  reuse: Reuse;
  /** The request's cache directives (undefined: none). */
  directives: Directives | undefined;
  /**
   * Set when the record is the object's identity entry standing in for the request's coding,
   * not stored yet (derive.ts staleSiblingFor): once revalidated, the coding is made from it.
   */
  coding?: ContentCoding | undefined;
}

/** What the lookup found: nothing usable for a cache (a method it does not serve), a miss, or an entry. */
export type LookupOutcome =
  | { kind: 'uncacheable-method' }
  | { kind: 'miss'; reason: 'miss' | 'vary-miss' | 'bypass' }
  | Found;

/** The fetch step's outcome: the origin's response (and when it was asked and answered), or why not. */
export type Fetched =
  | { kind: 'response'; response: OriginResponse; requestTime: number; responseTime: number }
  | { kind: 'failed'; error: EdgeError };
