#!/usr/bin/env node
/**
 * The strata command line: serve, check-config, purge, cache (ls | inspect | stats), top.
 */
import { existsSync, readFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  type CheckReport,
  checkConfigFile,
  claimCacheDir,
  createEdgeNode,
  type DemoOrigin,
  EdgeError,
  isEdgeError,
  loadConfig,
  type PrimaryFlags,
  prepareCacheDir,
  releaseAfterStart,
  runPrimary,
  startDemoOrigin,
} from '../src/index.ts';
import { registerCache } from './cache.ts';
import { registerFleet } from './fleet.ts';
import { registerHealth } from './health.ts';

/** The version in package.json (read at run time: the CLI ships beside it). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

import { registerPurge } from './purge.ts';
import { registerTop } from './top.ts';

function parseWorkers(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new InvalidArgumentError('expected a number from 1 to 256, or auto');
  return n;
}

/**
 * One line (a config error lists its problems below it) naming what failed, no stack trace;
 * STRATA_DEBUG=1 adds the stack of an error that is not the node's own.
 */
function fail(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  const stack =
    !isEdgeError(error) && process.env.STRATA_DEBUG && error instanceof Error ? `\n${error.stack}` : '';
  process.stderr.write(`strata: ${message}${stack}\n`);
  process.exit(1);
}

/**
 * The node listens: V8's young generation may grow and its optimizing compilers run again (held
 * while the modules loaded, src/start-flags.ts), and the compile cache (cli/strata.js) is written now, not only at exit, so a node
 * stopped with SIGKILL starts lean the next time too.
 */
function started(): void {
  releaseAfterStart();
  flushCompileCache();
}

/** The serve flags: the config file, and overrides of what it says. */
type ServeFlags = PrimaryFlags;

async function serve(flags: ServeFlags): Promise<void> {
  const { config: file, ...overrides } = flags;
  if (file && !existsSync(file)) {
    const named = process.env.STRATA_CONFIG === file ? ' (from STRATA_CONFIG)' : '';
    throw new EdgeError(
      'EDGE_ERR_CONFIG_READ',
      `no config file at ${file}${named}: mount or write one there (docs/configuration.md, docs/docker.md), or set STRATA_CONFIG= and give --origin URL`,
    );
  }
  const from = file ? { file } : {};
  let config = loadConfig({ ...from, env: process.env, overrides });
  let demo: DemoOrigin | undefined;
  if (config.sites.length === 0 && file !== undefined) {
    // A config file is a production setup: the demo origin is never started behind one.
    throw new EdgeError(
      'EDGE_ERR_CONFIG_INVALID',
      `${file} defines no sites: add sites and origins to it (docs/configuration.md), or give --origin URL (STRATA_ORIGIN)`,
    );
  }
  if (config.sites.length === 0) {
    demo = await startDemoOrigin();
    config = loadConfig({ ...from, env: process.env, overrides: { ...overrides, origin: demo.url } });
  }
  // One node per cache directory: offline tools refuse it while this process lives.
  prepareCacheDir(config.cache.dir);
  const release = claimCacheDir(config.cache.dir);
  process.on('exit', release);
  if (config.workers !== 1) {
    await runPrimary(config, flags);
    started();
    return;
  }
  const sectionsOverrides = demo ? { ...overrides, origin: demo.url } : overrides;
  // The fleet's shared sections (fleet.config) are validated as a SIGHUP reload reads the file.
  const node = await createEdgeNode({
    config,
    loadShared: (sections) =>
      loadConfig({
        ...from,
        env: process.env,
        overrides: sectionsOverrides,
        ...(sections ? { replace: sections } : {}),
      }),
  });
  started();
  const urls = node.addresses.map(
    (address, i) => `${config.listeners[i]?.tls ? 'https' : 'http'}://${address}`,
  );
  // A node whose sites name their hosts answers 421 to a bare address: the hint names a host.
  const hosts = config.sites.flatMap((site) => site.hosts);
  const named = hosts.includes('*') ? undefined : hosts.find((host) => !host.startsWith('*'));
  const hint = `curl -si ${named === undefined ? '' : `-H 'Host: ${named}' `}${urls[0]}/`;
  process.stderr.write(
    `strata: serving on ${urls.join(' and ')}${demo ? ` in front of the built-in demo origin at ${demo.url} (no --config and no --origin given)` : ''}; cache in ${config.cache.dir}\n` +
      `strata: try   ${hint}   (twice: the second answer says Cache-Status: ${config.proxy.via}; hit)\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`strata: ${signal}: draining in-flight requests\n`);
    void node
      .close()
      .then(() => demo?.close())
      .then(() => process.exit(0), fail);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => node.reopenLogs()); // logrotate: the access-log file is reopened
  // SIGHUP: the config file read again; sites and origins change in place (with more than
  // one worker the primary replaces the workers one at a time instead).
  process.on('SIGHUP', () => {
    try {
      // The shared sections in force from the fleet bucket stay over the file's.
      const shared = node.sharedSections;
      const next = loadConfig({
        ...from,
        env: process.env,
        overrides: sectionsOverrides,
        ...(shared ? { replace: shared } : {}),
      });
      const needRestart = node.reloadSites(next);
      node.reloadCertificates('SIGHUP');
      process.stderr.write(
        `strata: SIGHUP: sites and origins reloaded${needRestart.length > 0 ? `; restart to apply ${needRestart.join(', ')}` : ''}\n`,
      );
    } catch (error) {
      const reason = isEdgeError(error) ? error.message : String(error);
      // In the log as well, as a node with workers logs it (without a stack: the problems say it).
      node.edge.log.error(
        { code: isEdgeError(error) ? error.code : undefined, reason },
        'config reload failed; the running config stays',
      );
      process.stderr.write(`strata: SIGHUP: configuration not reloaded, the running one stays: ${reason}\n`);
    }
  });
}

function checkConfig(file: string): void {
  let report: CheckReport;
  try {
    report = checkConfigFile(file, process.env);
  } catch (error) {
    fail(error);
  }
  const { problems, notes } = report;
  if (notes.length > 0) process.stderr.write(`${notes.map((note) => `${note} (note)`).join('\n')}\n`);
  if (problems.length > 0) {
    process.stderr.write(
      `${problems.join('\n')}\n${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${file}: valid\n`);
}

const program = new Command('strata')
  .description('A caching edge node on a persistent LMDB cache')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the edge node (on embedded defaults: 127.0.0.1:8080 in front of a demo origin)')
  .addOption(new Option('--config <file>', 'YAML or JSON config file').env('STRATA_CONFIG'))
  .option('--listen <host:port>', 'client listener (default 127.0.0.1:8080)')
  .option(
    '--listen-tls <host:port>',
    'TLS listener (HTTPS with HTTP/2 and HTTP/1.1), with --tls-cert and --tls-key',
  )
  .option('--tls-cert <file>', 'PEM certificate chain of the TLS listener')
  .option('--tls-key <file>', 'PEM private key of the TLS listener')
  .option('--origin <url>', 'origin for every host no site claims, e.g. http://127.0.0.1:3000')
  .option('--cache-dir <dir>', 'LMDB cache directory (default .strata-cache)')
  .option('--admin-listen <host:port>', 'admin listener (default 127.0.0.1:9091)')
  .addOption(new Option('--admin-token <token>', 'admin bearer token').env('STRATA_ADMIN_TOKEN'))
  .option('--workers <n>', 'worker processes, or auto for one per core (default 1)', parseWorkers)
  .addOption(
    new Option('--log-level <level>', 'log level').choices([
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ]),
  )
  .action((flags: ServeFlags) => serve(flags).catch(fail));

program
  .command('check-config')
  .description(
    'validate a config file as serve would, without binding any port; prints every problem as file:line:col',
  )
  .argument('<file>', 'YAML or JSON config file')
  .action(checkConfig);

registerPurge(program);
registerCache(program);
registerTop(program);
registerHealth(program);
registerFleet(program);

// Every command but serve (which waits until it listens) has read its modules by now: V8's young
// generation and optimizing compilers, held while they loaded (cli/strata.js), are released, so
// a long offline purge or `strata top` runs as fast as before.
program.hook('preAction', (_program, command) => {
  if (command.name() !== 'serve') releaseAfterStart();
});

await program.parseAsync(process.argv);
