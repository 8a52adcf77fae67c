/**
 * Every key of the store's `meta` database, in one table: what it holds and who writes it.
 * Nothing outside the store reads or writes `meta` but through these names (store.ts).
 */
export const META = {
  /** Store schema of the directory (STORE_SCHEMA, store.ts); checked and migrated on open. */
  schema: 'schema',
  /** Highest entry record version written to the directory (RECORD_VERSION, record.ts); checked on open. */
  recordVersion: 'recordVersion',
  /** Bytes charged against cache.maxSize by every stored variant (entryCost). */
  bytes: 'bytes',
  /** Node-wide purge sequence: moves with every purge batch; fills compare it at commit. */
  purgeSeq: 'purgeSeq',
  /** `gen:<storage key>`: invalidations of one key; fills of that key compare it at commit. */
  keyGenerationPrefix: 'gen:',
  /** Last sequence of the durable purge log (purge-log.ts); keeps growing after trims. */
  purgeLogSeq: 'purgeLogSeq',
  /** Purges set aside at startup (newest kept), as /stats lists them. */
  purgeQuarantine: 'purgeQuarantine',
  /** `purgePeer:<peer>`: last purge-log sequence delivered to a peer. */
  purgePeerPrefix: 'purgePeer:',
  /** `purgeFrom:<node id>`: last sequence applied from a peer that forwarded purges here. */
  purgeFromPrefix: 'purgeFrom:',
  /**
   * `purgeOrigin:<origin id>`: highest sequence of that purge origin (a node or a bus stream)
   * fully applied here; the purge fence compares a child's claims with it (docs/tiers.md).
   */
  purgeOriginPrefix: 'purgeOrigin:',
  /** This cache's id, persisted with it: names it in forwarded purges. */
  nodeId: 'nodeId',
  /** The configured name (fleet.node, else tiers.id) of the node that last used this cache. */
  nodeIdentity: 'nodeIdentity',
} as const;

/** The meta key holding the invalidation generation of one storage key. */
export function keyGenerationKey(storage: string): string {
  return `${META.keyGenerationPrefix}${storage}`;
}
