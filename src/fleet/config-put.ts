/**
 * `strata fleet config put FILE`: puts a shared configuration into the fleet's KV bucket. The
 * file is checked first as far as it can be without a node's own file: its shape (sites,
 * origins, geo only) and, when it names both sites and origins, the schema. Each node still
 * validates it against its own configuration and applies or rejects it.
 */
import { connect } from '@nats-io/transport-node';
import type { FleetConfig } from '../config/fleet-schema.ts';
import { formatProblems, validateConfig } from '../config/load.ts';
import { EdgeError } from '../errors.ts';
import { openBucket } from './config-watch.ts';
import { connectionOptions } from './connection.ts';
import { parseSections } from './sections.ts';

export interface PutSharedConfig {
  nats: FleetConfig['nats'];
  bucket: string;
  key: string;
  /** The file's text (YAML or JSON). */
  text: string;
}

/** Why the text cannot be a shared configuration, or undefined. */
export function sharedConfigProblem(text: string): string | undefined {
  const parsed = parseSections(text);
  if (!parsed.ok) return parsed.reason;
  if (parsed.sections.sites === undefined || parsed.sections.origins === undefined) return undefined;
  const result = validateConfig({ ...parsed.sections });
  return 'problems' in result ? `invalid:\n${formatProblems(result.problems)}` : undefined;
}

/** Puts the text under the key; resolves with the new revision. */
export async function putSharedConfig(options: PutSharedConfig): Promise<number> {
  const problem = sharedConfigProblem(options.text);
  if (problem !== undefined)
    throw new EdgeError('EDGE_ERR_CONFIG_INVALID', `shared configuration ${problem}`);
  if (options.nats.servers.length === 0)
    throw new EdgeError('EDGE_ERR_CONFIG_INVALID', 'no NATS server: give --server URL or fleet.nats.servers');
  const nc = await connect({
    ...connectionOptions(options.nats, 'strata fleet config put'),
    maxReconnectAttempts: 0,
  });
  try {
    const kv = await openBucket(nc, options.bucket);
    return await kv.put(options.key, options.text);
  } finally {
    await nc.close();
  }
}
