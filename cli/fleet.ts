/**
 * strata fleet config put FILE: puts a shared configuration (sites, origins, geo) into the
 * fleet's KV bucket; every node watching the key validates it as a reload would and applies or
 * rejects it (docs/tiers.md, Fleet). The servers, bucket and key come from the node's config
 * file (fleet.nats, fleet.config) unless given.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type FleetSections, loadConfig, putSharedConfig } from '../src/index.ts';
import { CliError, run } from './admin-client.ts';

interface PutFlags {
  config?: string;
  server?: string[];
  bucket?: string;
  key?: string;
}

async function put(file: string, flags: PutFlags): Promise<number> {
  const configFile = flags.config ?? process.env.STRATA_CONFIG;
  const fleet = loadConfig({ ...(configFile ? { file: configFile } : {}), env: process.env }).fleet;
  // Given a node's file, the shared part is validated over it as that node will.
  const check = configFile
    ? (sections: FleetSections) => loadConfig({ file: configFile, env: process.env, replace: sections })
    : undefined;
  const key = flags.key ?? fleet.config?.key;
  if (key === undefined) throw new CliError('no key: give --key NAME (or fleet.config.key in --config)');
  const revision = await putSharedConfig({
    nats: flags.server ? { ...fleet.nats, servers: flags.server } : fleet.nats,
    bucket: flags.bucket ?? fleet.config?.bucket ?? 'STRATA_CONFIG',
    key,
    text: readFileSync(file, 'utf8'),
    ...(check ? { check } : {}),
  });
  process.stdout.write(`${file}: put as ${key}, revision ${revision}\n`);
  return 0;
}

export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('the fleet bus on NATS JetStream (docs/tiers.md)');
  const config = fleet.command('config').description('shared configuration in the fleet KV bucket');
  config
    .command('put')
    .description('put a YAML or JSON file of sites, origins and geo under a key; watching nodes apply it')
    .argument('<file>', 'YAML or JSON with sites, origins and/or geo')
    .option(
      '--config <file>',
      "a node's config file, for fleet.nats and fleet.config (default STRATA_CONFIG)",
    )
    .option('--server <url...>', 'NATS server URL (instead of fleet.nats.servers)')
    .option('--bucket <name>', 'KV bucket (default fleet.config.bucket, else STRATA_CONFIG)')
    .option('--key <name>', 'key (default fleet.config.key)')
    .action((file: string, flags: PutFlags) => run(() => put(file, flags)));
}
