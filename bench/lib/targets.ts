/**
 * The servers a scenario measures, started the same way a user would start them, pinned to the
 * target core: the bench origin, the ceiling (bare node:http), Strata (`cli/strata.js serve`),
 * nginx proxy_cache, Varnish and Apache Traffic Server with the configs beside this folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './generator.ts';
import { waitForAnswer } from './http.ts';
import {
  capture,
  freePort,
  type Started,
  startProcess,
  stopProcess,
  waitForPort,
  which,
} from './processes.ts';

export type TargetKind =
  | 'origin'
  | 'ceiling'
  | 'forwarder'
  | 'strata'
  | 'nginx'
  | 'varnish'
  | 'trafficserver';

export interface TargetOptions {
  /** Folder for this target's config, cache and log. */
  dir: string;
  cores: string | null;
  workers?: number;
  /** The origin a proxy forwards to. */
  originPort?: number;
  /** nginx proxy_cache_lock (off unless asked, as in nginx's own default). */
  cacheLock?: boolean;
  /** Origin delay for /slow/ paths. */
  delayMs?: number;
  /** Write V8 CPU profiles here (`node --cpu-prof`: Strata, the ceiling and the forward), or null. */
  profileDir?: string | null;
  /** Strata: a site (all hosts, the bench origin) with this `security` section. */
  security?: Record<string, unknown>;
  /** Config keys added to Strata's bench config (the `origins` scenario's origins and sites). */
  strataConfig?: Record<string, unknown>;
  /**
   * Serve the load over TLS on a second port: 'h1' (HTTPS/1.1) or 'h2' (HTTP/2, with HTTP/1.1
   * by ALPN), with one bench certificate (EC P-256) for every target.
   */
  tls?: 'h1' | 'h2';
  /** The ceiling with `tls: 'h2'`: HTTP/2 answered on the raw 'stream' event, not the compatibility API. */
  h2Raw?: boolean;
  /** The ceiling: µs of CPU spun before every HTTP/1.1 answer (`--busy-us`, a calibration row). */
  busyUs?: number;
  /** Strata: Node.js flags before the script (V8 heap settings, for instance). */
  nodeFlags?: string[];
  /**
   * How startTarget knows the target is up: 'answer' (default) sends `GET /__ready` until it
   * answers; 'port' only waits for the port to accept a connection, so the target has served
   * no request yet (bench/start-memory.ts reads its memory at that point).
   */
  readyBy?: 'answer' | 'port';
}

export interface Target {
  kind: TargetKind;
  port: number;
  /** Where the load goes: http://… or, with `tls`, https://… on the TLS port. */
  url: string;
  /** Strata's admin listener (purge API), with its bearer token. */
  admin: { url: string; token: string } | null;
  proc: Started;
  stop(): Promise<void>;
}

const STRATA_CLI = path.join(repoRoot(), 'cli', 'strata.js');
const nginxPath = which('nginx');
const varnishdPath = which('varnishd');
const trafficServerPath = which('traffic_server');

/** Why a target cannot run here, or null when it can. */
export function unavailable(kind: TargetKind): string | null {
  if (kind === 'nginx' && nginxPath === null) return 'nginx not installed (run bench/setup)';
  if (kind === 'varnish' && varnishdPath === null) return 'varnish not installed (run bench/setup)';
  if (kind === 'trafficserver' && trafficServerPath === null)
    return 'trafficserver not installed (run bench/setup)';
  if (kind === 'strata' && !existsSync(STRATA_CLI)) return 'cli/strata.js not present yet';
  return null;
}

/** Fills `{{NAME}}` placeholders; a placeholder left unfilled is a bug in the caller. */
export function render(templateFile: string, values: Record<string, string>): string {
  const text = readFileSync(path.join(repoRoot(), 'bench', templateFile), 'utf8');
  const out = text.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => values[name] ?? whole);
  const left = /\{\{[A-Z_]+\}\}/.exec(out);
  if (left !== null) throw new Error(`${templateFile}: no value for ${left[0]}`);
  return out;
}

function originPortOf(options: TargetOptions): number {
  if (options.originPort === undefined) throw new Error('a proxy target needs originPort');
  return options.originPort;
}

export const ADMIN_TOKEN = 'strata-bench-admin-token';

/**
 * Strata's bench settings: quiet logs (nginx runs with access_log off too) and room for the 1 GiB
 * object of the `large` scenario. Passed with --config when `serve --help` offers it.
 */
const STRATA_CONFIG = {
  logging: { level: 'warn', access: false },
  cache: { maxSize: '8GiB', maxObjectSize: '2GiB' },
};

let strataHelp: Promise<string> | null = null;

/** `strata serve --help`, read once: which optional flags this build of the CLI offers. */
function strataServeHelp(): Promise<string> {
  strataHelp ??= capture({
    name: 'strata --help',
    command: process.execPath,
    args: [STRATA_CLI, 'serve', '--help'],
    cores: null,
    cwd: repoRoot(),
    timeoutMs: 20000,
  }).then((r) => r.stdout + r.stderr);
  return strataHelp;
}

/** `node --cpu-prof` into the target's profile folder when the run profiles (Strata and the Node references). */
function profileFlags(options: TargetOptions): string[] {
  return options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
}

async function strataArgs(
  port: number,
  adminPort: number,
  options: TargetOptions,
  tlsPort?: number,
): Promise<string[]> {
  const args = [
    ...profileFlags(options),
    ...(options.nodeFlags ?? []),
    'cli/strata.js',
    'serve',
    '--listen',
    `127.0.0.1:${port}`,
  ];
  if (options.tls !== undefined && tlsPort !== undefined) {
    const cert = benchCertificate(options.dir);
    args.push('--listen-tls', `127.0.0.1:${tlsPort}`, '--tls-cert', cert.cert, '--tls-key', cert.key);
  }
  args.push('--origin', `http://127.0.0.1:${originPortOf(options)}`);
  args.push('--cache-dir', path.join(options.dir, 'cache'));
  args.push('--workers', String(options.workers ?? 1));
  args.push('--admin-listen', `127.0.0.1:${adminPort}`, '--admin-token', ADMIN_TOKEN);
  if ((await strataServeHelp()).includes('--config')) {
    const configPath = path.join(options.dir, 'strata.json');
    // The site named here answers every Host before the --origin flag's default site.
    const base = { ...STRATA_CONFIG, ...options.strataConfig };
    const config = options.security
      ? { ...base, sites: [{ name: 'bench', hosts: ['*'], origins: ['origin'], security: options.security }] }
      : base;
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    args.push('--config', configPath);
  }
  const extra = process.env.STRATA_BENCH_ARGS?.trim();
  if (extra) args.push(...extra.split(/\s+/));
  return args;
}

async function commandFor(
  kind: TargetKind,
  port: number,
  adminPort: number,
  options: TargetOptions,
  tlsPort?: number,
): Promise<[string, string[]]> {
  const node = process.execPath;
  const workers = String(options.workers ?? 1);
  switch (kind) {
    case 'origin':
      return [
        node,
        ['bench/origin.ts', '--port', String(port), '--delay-ms', String(options.delayMs ?? 200)],
      ];
    case 'ceiling': {
      const args = [
        ...profileFlags(options),
        'bench/ceiling.ts',
        '--port',
        String(port),
        '--workers',
        workers,
      ];
      if (options.busyUs !== undefined) args.push('--busy-us', String(options.busyUs));
      if (options.tls !== undefined && tlsPort !== undefined) {
        const cert = benchCertificate(options.dir);
        args.push('--tls-port', String(tlsPort), '--tls-cert', cert.cert, '--tls-key', cert.key);
        if (options.tls === 'h2') args.push('--h2');
        if (options.tls === 'h2' && options.h2Raw) args.push('--h2-raw');
      }
      return [node, args];
    }
    case 'forwarder':
      return [
        node,
        [
          ...profileFlags(options),
          'bench/forwarder.ts',
          '--port',
          String(port),
          '--origin',
          `http://127.0.0.1:${originPortOf(options)}`,
        ],
      ];
    case 'strata':
      return [node, await strataArgs(port, adminPort, options, tlsPort)];
    case 'nginx':
      return [nginxPath ?? 'nginx', nginxArgs(port, options, tlsPort)];
    case 'varnish':
      return [varnishdPath ?? 'varnishd', varnishArgs(port, options)];
    case 'trafficserver':
      return [trafficServerPath ?? 'traffic_server', trafficServerArgs(port, options)];
  }
}

function nginxArgs(port: number, options: TargetOptions, tlsPort?: number): string[] {
  const workers = options.workers ?? 1;
  let tls = '';
  if (options.tls !== undefined && tlsPort !== undefined) {
    const cert = benchCertificate(options.dir);
    // The same certificate, TLS versions and session tickets as Strata's TLS listener.
    tls = [
      `listen 127.0.0.1:${tlsPort} ssl${options.tls === 'h2' ? ' http2' : ''} backlog=4096;`,
      `ssl_certificate ${cert.cert};`,
      `ssl_certificate_key ${cert.key};`,
      'ssl_protocols TLSv1.2 TLSv1.3;',
      'ssl_session_tickets on;',
      'http2_max_concurrent_streams 128;',
    ].join('\n    ');
  }
  const conf = render('nginx.conf.template', {
    USER: process.getuid?.() === 0 ? 'user root;' : '',
    WORKERS: String(workers),
    AFFINITY: workers === 1 ? '1' : 'auto',
    DIR: options.dir,
    PORT: String(port),
    ORIGIN_PORT: String(originPortOf(options)),
    CACHE_LOCK: options.cacheLock === true ? 'on' : 'off',
    TLS: tls,
  });
  const confPath = path.join(options.dir, 'nginx.conf');
  writeFileSync(confPath, conf);
  return ['-p', options.dir, '-e', path.join(options.dir, 'error.log'), '-c', confPath];
}

function varnishArgs(port: number, options: TargetOptions): string[] {
  const vclPath = path.join(options.dir, 'default.vcl');
  writeFileSync(vclPath, render('varnish.vcl.template', { ORIGIN_PORT: String(originPortOf(options)) }));
  const pools = String(options.workers ?? 1);
  return [
    ...['-F', '-n', path.join(options.dir, 'varnish'), '-a', `127.0.0.1:${port}`, '-f', vclPath],
    ...['-T', 'none', '-s', 'malloc,2G', '-p', `thread_pools=${pools}`, '-p', 'thread_pool_min=100'],
    ...['-p', 'thread_pool_max=5000'],
  ];
}

/** Traffic Server's configuration files left empty: present so it reads no system-wide copy. */
const TRAFFIC_SERVER_EMPTY = [
  'cache.config',
  'hosting.config',
  'parent.config',
  'volume.config',
  'splitdns.config',
  'socks.config',
  'ssl_multicert.config',
  'sni.yaml',
  'strategies.yaml',
  'logging.yaml',
];

/**
 * Apache Traffic Server in a runroot of its own (`--run-root`): runroot.yaml points its config,
 * runtime, log and cache folders into the target folder, so nothing of the system install's
 * /etc/trafficserver or /var is read or written. Runs in the foreground as the current user.
 */
function trafficServerArgs(port: number, options: TargetOptions): string[] {
  const dir = options.dir;
  const sub = (name: string): string => {
    const folder = path.join(dir, name);
    mkdirSync(folder, { recursive: true });
    return folder;
  };
  const etc = sub('etc');
  const cache = sub('cache');
  const layout = {
    prefix: dir,
    exec_prefix: '/usr',
    bindir: '/usr/bin',
    sbindir: '/usr/sbin',
    sysconfdir: etc,
    datadir: sub('var'),
    includedir: '/usr/include',
    libdir: '/usr/lib/trafficserver',
    libexecdir: '/usr/lib/trafficserver/modules',
    localstatedir: sub('var'),
    runtimedir: sub('run'),
    logdir: sub('log'),
    cachedir: cache,
  };
  const yaml = Object.entries(layout).map(([key, value]) => `${key}: ${value}\n`);
  writeFileSync(path.join(dir, 'runroot.yaml'), yaml.join(''));
  const records = render('trafficserver.records.config.template', {
    PORT: String(port),
    THREADS: String(options.workers ?? 1),
  });
  writeFileSync(path.join(etc, 'records.config'), records);
  writeFileSync(path.join(etc, 'remap.config'), `map / http://127.0.0.1:${originPortOf(options)}/\n`);
  // A folder in storage.config: Traffic Server makes its cache file (cache.db) there.
  writeFileSync(path.join(etc, 'storage.config'), `${cache} 512M\n`);
  const cacheStatus = path.join(repoRoot(), 'bench', 'trafficserver.cache-status.conf');
  writeFileSync(path.join(etc, 'plugin.config'), `header_rewrite.so ${cacheStatus}\n`);
  writeFileSync(
    path.join(etc, 'ip_allow.yaml'),
    'ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: allow\n    methods: ALL\n',
  );
  for (const name of TRAFFIC_SERVER_EMPTY) writeFileSync(path.join(etc, name), '');
  return [`--run-root=${dir}`];
}

/** Starts a target and waits until it answers HTTP. */
export async function startTarget(kind: TargetKind, options: TargetOptions): Promise<Target> {
  const reason = unavailable(kind);
  if (reason !== null) throw new Error(`${kind}: ${reason}`);
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const port = await freePort();
  const adminPort = kind === 'strata' ? await freePort() : null;
  const tlsPort = options.tls !== undefined ? await freePort() : undefined;
  const [command, args] = await commandFor(kind, port, adminPort ?? 0, options, tlsPort);
  const proc = startProcess({
    name: kind,
    command,
    args,
    cores: options.cores,
    cwd: repoRoot(),
    env: { ...process.env, STRATA_LOG_LEVEL: 'warn' },
    logPath: path.join(options.dir, `${kind}.log`),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForPort(proc, port, 20000);
    if (options.readyBy !== 'port') await waitForAnswer(`${url}/__ready`, 20000);
  } catch (error) {
    await stopProcess(proc);
    throw error;
  }
  const admin = adminPort === null ? null : { url: `http://127.0.0.1:${adminPort}`, token: ADMIN_TOKEN };
  if (tlsPort !== undefined) {
    try {
      await waitForPort(proc, tlsPort, 20000);
    } catch (error) {
      await stopProcess(proc);
      throw error;
    }
    const tlsUrl = `https://127.0.0.1:${tlsPort}`;
    return { kind, port: tlsPort, url: tlsUrl, admin, proc, stop: () => stopProcess(proc) };
  }
  return { kind, port, url, admin, proc, stop: () => stopProcess(proc) };
}

/**
 * The bench certificate (self-signed EC P-256, made once per target folder's parent with the
 * openssl command): every target of a TLS scenario presents the same one.
 */
export function benchCertificate(dir: string): { cert: string; key: string } {
  const folder = path.dirname(dir);
  const cert = path.join(folder, 'bench-cert.pem');
  const key = path.join(folder, 'bench-key.pem');
  if (!existsSync(cert) || !existsSync(key)) {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
        ...['-keyout', key, '-out', cert, '-days', '365', '-subj', '/CN=bench.test'],
        ...['-addext', 'subjectAltName=DNS:bench.test,IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
  }
  return { cert, key };
}
