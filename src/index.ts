/** Public API of the Strata edge node. */

export type { InspectView, ListOptions, ListView, StatsView, VariantView } from './admin/cache-view.ts';
export type { CompactResult, OfflineCache, OfflineCacheOptions } from './admin/offline.ts';
export { compactCacheDirectory, openCacheDirectory } from './admin/offline.ts';
export type { TrafficView } from './admin/traffic.ts';
export { assertNotServed, claimCacheDir, prepareCacheDir } from './cache/cache-dir.ts';

import type { PrimaryFlags } from './cluster/primary.ts';
import type { Config } from './config/schema.ts';

export type { PrimaryFlags } from './cluster/primary.ts';

/** `strata serve --workers N`: node:cluster and the primary's code are read only then. */
export async function runPrimary(config: Config, flags: PrimaryFlags = {}): Promise<void> {
  const primary = await import('./cluster/primary.ts');
  return primary.runPrimary(config, flags);
}
export type { CheckReport, ConfigOverrides, ConfigProblem, LoadOptions } from './config/load.ts';
export {
  checkConfigFile,
  formatProblems,
  loadConfig,
  readConfigFile,
  validateConfig,
} from './config/load.ts';
export type { Config, ConfigInput } from './config/schema.ts';
export type { DemoOrigin } from './demo/origin.ts';
export { startDemoOrigin } from './demo/origin.ts';
export type { EdgeNode, EdgeNodeOptions } from './edge-node.ts';
export { createEdgeNode } from './edge-node.ts';
export type { ErrorCode } from './errors.ts';
export { EdgeError, ERROR_CODES, isEdgeError } from './errors.ts';
export type { PutSharedConfig } from './fleet/config-put.ts';
export { putSharedConfig, sharedConfigProblem } from './fleet/config-put.ts';
export type { FleetSections } from './fleet/sections.ts';
export { createLogger } from './observability/logger.ts';
export type { PurgeCommand } from './purge/command.ts';
export { describePurge, newPurgeProblem, parsePurgeBody } from './purge/command.ts';
export type { PurgeProgress, PurgeResult } from './purge/service.ts';
export type { GeoLookup, GeoPlace } from './security/ip-rules.ts';
export { networksLookup } from './security/ip-rules.ts';
export { releaseAfterStart } from './start-flags.ts';
