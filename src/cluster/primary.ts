/** Multi-worker serving (node:cluster). */
import type { Config } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';

export async function runPrimary(config: Config, _flags: unknown): Promise<void> {
  throw new EdgeError(
    'EDGE_ERR_CONFIG_INVALID',
    `workers: ${config.workers} — multi-worker serving is not available yet; use --workers 1`,
  );
}
