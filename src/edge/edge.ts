/** What the pipeline's phases share: built once by edge-node.ts. */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CollapseTable } from '../cache/collapse.ts';
import type { CacheStore } from '../cache/store.ts';
import type { Config } from '../config/schema.ts';
import type { Splice } from '../http/splice.ts';
import type { AccessLog } from '../observability/access-log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PurgeFence } from '../purge/fence.ts';
import type { SiteTable } from './sites.ts';

export interface Edge {
  readonly config: Config;
  readonly store: CacheStore;
  readonly collapse: CollapseTable;
  /** Host → site; replaced as a whole when the configuration is reloaded (SIGHUP). */
  sites: SiteTable;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The access log (logging.access), or undefined when it is off. */
  readonly access: AccessLog | undefined;
  /** Wall-clock milliseconds; injected so tests control time. */
  readonly now: () => number;
  /** Whether a peer address is a trusted proxy. */
  readonly trusted: (address: string) => boolean;
  /** Our name in Via, CDN-Loop and Cache-Status. */
  readonly name: string;
  /** This node's id in CDN-Loop (`node=`), shared by its workers: tells a loop from a tier of the same name. */
  loopId: string;
  /**
   * The purge fence (docs/tiers.md): the claims this node sends its parents and checks those of
   * its children. Set once the purge service exists; undefined without `tiers.secret`.
   */
  fence: PurgeFence | undefined;
  /** Keys with a background revalidation running in this process. */
  readonly revalidating: Set<string>;
  /** Lower-case names of the response headers indexed as tags. */
  readonly tagHeaders: readonly string[];
  /** Response fields never delivered to clients: stripStored, and tierFields (which verified child tiers get). */
  readonly stripResponse: ReadonlySet<string>;
  /** Response fields never stored nor delivered (Surrogate-Control, hidden headers). */
  readonly stripStored: ReadonlySet<string>;
  /** Stored, but delivered only to a verified child tier: Strata-CDN-Cache-Control and tag headers (docs/tiers.md). */
  readonly tierFields: ReadonlySet<string>;
  /** Fills and background revalidations still running (for graceful shutdown and tests). */
  readonly work: Set<Promise<unknown>>;
  /**
   * WebSocket tunnels open in this process, and the client connections of handshakes waiting for
   * their origin (tunnel.ts; a drain that ends closes both). `answering`: handshakes neither
   * answered and closed nor a tunnel yet, each with the promise that settles then (node:http may
   * track their connections no more: a drain waits for them, so their access lines are
   * written). `stopping`: the node's close began, and a handshake reaching the handler from then
   * on (one pipelined behind a slow answer) opens no tunnel.
   */
  readonly tunnels: {
    readonly open: Set<Splice>;
    readonly pending: Set<Socket>;
    readonly answering: Map<ServerResponse, Promise<void>>;
    stopping: boolean;
  };
  /** How long followers wait for a leader's response headers. */
  readonly collapseTimeoutMs: number;
}
