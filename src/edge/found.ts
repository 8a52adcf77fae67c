/** A stored response the lookup found for a request, with the verdict on reusing it. */
import type { Directives } from '../cache/policy/cache-control.ts';
import type { Reuse } from '../cache/policy/reuse.ts';
import type { EntryRecord } from '../cache/record.ts';

export interface Found {
  kind: 'found';
  id: string;
  record: EntryRecord;
  reuse: Reuse;
  /** The request's cache directives (undefined: none). */
  directives: Directives | undefined;
}

/** What the lookup found: nothing usable for a cache (a method it does not serve), a miss, or an entry. */
export type LookupOutcome =
  | { kind: 'uncacheable-method' }
  | { kind: 'miss'; reason: 'miss' | 'vary-miss' }
  | Found;
