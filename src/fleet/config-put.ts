/**
 * `strata fleet config put FILE`: puts a shared configuration into the fleet's KV bucket. The
 * file's shape is checked first (sites, origins, geo only) and, given a node's own file, the
 * whole as that node would validate it (its sections may lean on the node's file: a parent
 * tier needs its tiers.secret). Each node still validates it against its own configuration
 * and applies or rejects it.
 */
import type { FleetConfig } from '../config/fleet-schema.ts';
import { EdgeError } from '../errors.ts';
import { type FleetSections, parseSections } from './sections.ts';

export interface PutSharedConfig {
  nats: FleetConfig['nats'];
  bucket: string;
  key: string;
  /** The file's text (YAML or JSON). */
  text: string;
  /** Validates the sections as a node would (throws with the problems): a node's loader. */
  check?: (sections: FleetSections) => unknown;
}

/** Why the text cannot be a shared configuration (its shape), or undefined. */
export function sharedConfigProblem(text: string): string | undefined {
  const parsed = parseSections(text);
  return parsed.ok ? undefined : parsed.reason;
}

/** Puts the text under the key; resolves with the new revision. */
export async function putSharedConfig(options: PutSharedConfig): Promise<number> {
  const parsed = parseSections(options.text);
  if (!parsed.ok) throw new EdgeError('EDGE_ERR_CONFIG_INVALID', `shared configuration ${parsed.reason}`);
  // As the node whose file was given would validate it: nothing a node would reject is put.
  options.check?.(parsed.sections);
  if (options.nats.servers.length === 0)
    throw new EdgeError('EDGE_ERR_CONFIG_INVALID', 'no NATS server: give --server URL or fleet.nats.servers');
  // The NATS client is read here, not when the CLI (which exports this) starts a node.
  const [{ connect }, { openBucket }, { connectionOptions }] = await Promise.all([
    import('@nats-io/transport-node'),
    import('./config-watch.ts'),
    import('./connection.ts'),
  ]);
  const nc = await connect({
    ...connectionOptions(options.nats, 'strata fleet config put'),
    maxReconnectAttempts: 0,
  }).catch((error: unknown) => {
    // The client's own message ("connection refused") names no server.
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot reach NATS at ${options.nats.servers.join(', ')}: ${reason}`, { cause: error });
  });
  try {
    const kv = await openBucket(nc, options.bucket);
    return await kv.put(options.key, options.text);
  } finally {
    await nc.close();
  }
}
