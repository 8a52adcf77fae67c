/** The shape of our own conformance cases: a table of steps run against one or two Strata nodes. */
import type { OriginScript } from './origin.ts';

/** What one Cache-Status member (RFC 9211 §2) must say; unlisted parameters are not checked. */
export interface CacheStatusExpect {
  hit?: boolean;
  /** The fwd value (RFC 9211 §2.2); a list accepts any of its values. */
  fwd?: string | string[];
  fwdStatus?: number;
  stored?: boolean;
  collapsed?: boolean;
  /** ttl (RFC 9211 §2.4) present and within these bounds, in seconds. */
  ttl?: { min?: number; max?: number };
}

export interface ResponseExpect {
  status?: number;
  /** Requests the origin has seen for this path once this step is done. */
  originRequests?: number;
  /** Expectation on the member of the node that answered (the last member). */
  cacheStatus?: CacheStatusExpect;
  /** Number of Cache-Status members: one per cache on the path. */
  cacheStatusMembers?: number;
  /** Expectation on the member of the tier closest to the origin (the first member). */
  firstCacheStatus?: CacheStatusExpect;
  /** Age header (RFC 9111 §5.1) present and at least this many seconds. */
  ageAtLeast?: number;
  /** Header values: a string must match exactly, null means absent. */
  headers?: Record<string, string | null>;
  /** The interim (1xx) responses received before the final one, in order (status and Link). */
  interim?: Array<{ status: number; link: string | undefined }>;
  /** The body is the one the origin sent in answer to its n-th request for this path. */
  bodyFromOriginRequest?: number;
}

export type Step =
  | {
      do: 'request';
      path: string;
      method?: string;
      headers?: Record<string, string>;
      via?: 'edge' | 'shield';
      expect: ResponseExpect;
    }
  | {
      do: 'concurrent';
      path: string;
      count: number;
      headers?: Record<string, string>;
      expect: {
        originRequests: number;
        /** All responses carry the same body. */
        sameBody?: boolean;
        /** At least `atLeast` responses have this status. */
        status?: { status: number; atLeast: number };
        /** At least this many responses say hit or collapsed in Cache-Status. */
        servedFromFillAtLeast?: number;
      };
    }
  | {
      do: 'purge';
      /** The admin API body: absolute URLs as clients see them (http://strata.test/...), tags, soft. */
      body: { urls?: string[]; tags?: string[]; prefixes?: string[]; soft?: boolean };
    }
  | {
      do: 'together';
      /** Requests sent side by side, each after its own delay; only their completion is checked. */
      requests: Array<{ path: string; method?: string; startAfterMs?: number }>;
    }
  | { do: 'wait'; ms: number }
  | { do: 'restart' };

export interface Case {
  id: string;
  title: string;
  /** The clause the case checks, e.g. 'RFC 9111 §4'. */
  rfc: string;
  /** One node, or an edge node whose origin is a shield node in front of the origin. */
  topology: 'single' | 'two-tier';
  origin: Record<string, OriginScript>;
  steps: Step[];
  /** Not run yet; says what it waits for. */
  pending?: string;
}
