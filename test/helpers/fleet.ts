/**
 * A fleet of real `strata serve` processes on loopback (edges, shields), each with its own
 * config file and cache directory, for the multi-process tier tests and the fleet bench.
 * `startFleet` starts the shields in front of one origin, then the edges in front of the shields.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;
export const FLEET_SECRET = 'fleet-secret-for-the-fleet-tests-0123456789';
export const FLEET_TOKEN = 'fleet-admin-token-0123456789';
/** The site's name, as every client of the fleet sends it. */
export const FLEET_HOST = 'shop.example.com';

export interface FleetProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
  readonly admin: string;
  readonly exited: Promise<number | null>;
  /** Sum of a counter over its labels, read from the admin /metrics (`name` without labels). */
  counter(name: string): Promise<number>;
  /** A POST /purge on the admin API; resolves with the answer once the node acknowledged it. */
  purge(command: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * Starts `strata serve` with `config` (listeners, admin and cache are filled in: a port of the
 * system's choice for clients, `adminPort` for the admin API). Resolves once it serves.
 */
export async function serveProcess(
  name: string,
  dir: string,
  config: Record<string, unknown>,
  adminPort: number,
  listen = '127.0.0.1:0',
): Promise<FleetProcess> {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      listeners: [{ listen }],
      admin: { listen: `127.0.0.1:${adminPort}`, token: FLEET_TOKEN },
      logging: { level: 'warn' },
      cache: { dir: join(dir, name) },
      ...config,
    }),
  );
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no banner in 20 s: ${stderr}`)), 20_000);
    child.stderr!.on('data', (data: Buffer) => {
      // Only the banner is needed; later lines are dropped (the buffer stays small).
      if (stderr.length < 20_000) stderr += data.toString();
      const match = /serving on (http:\/\/[^\s;]+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before serving: ${stderr}`)));
  });
  const admin = `http://127.0.0.1:${adminPort}`;
  const auth = { authorization: `Bearer ${FLEET_TOKEN}` };
  return {
    name,
    child,
    url,
    admin,
    exited,
    async counter(metric) {
      const text = await (await fetch(`${admin}/metrics`, { headers: auth })).text();
      let total = 0;
      for (const line of text.split('\n'))
        if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `))
          total += Number(line.split(' ').at(-1));
      return total;
    },
    async purge(command) {
      const response = await fetch(`${admin}/purge`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(command),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
  };
}

export interface FleetOptions {
  edges: number;
  shields: number;
  /** The real origin's URL. */
  origin: string;
  /** Extra config for every edge (merged over the defaults). */
  edge?: Record<string, unknown>;
  /** Extra config for every shield. */
  shield?: Record<string, unknown>;
  /** The URL edges forward purges to for shield `i` (default: its admin API; a test may put a delay in front). */
  purgePeer?: (shieldAdmin: string, index: number) => string | Promise<string>;
  /** Edges forward every purge they apply to the shields (purge.peers). Default false. */
  edgesForwardPurges?: boolean;
}

export interface Fleet {
  readonly dir: string;
  readonly edges: FleetProcess[];
  readonly shields: FleetProcess[];
  close(): Promise<void>;
}

/** Health of the parents: quick probes, so a killed shield is ejected within about a second. */
const PARENT = { connectTimeout: 1000, responseTimeout: 5000 };

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-fleet-'));
  const started: FleetProcess[] = [];
  const fleet: Fleet = {
    dir,
    edges: [],
    shields: [],
    async close() {
      for (const node of started) if (node.child.exitCode === null) node.child.kill('SIGKILL');
      await Promise.all(started.map((node) => node.exited));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < options.shields; i++) {
      const name = `shield-${i + 1}`;
      const shield = await serveProcess(
        name,
        dir,
        {
          proxy: { via: name },
          tiers: { id: name, secret: FLEET_SECRET },
          origins: [{ name: 'origin', url: options.origin }],
          sites: [{ name: 'shop', hosts: ['*'], origins: ['origin'] }],
          ...options.shield,
        },
        await freePort(),
      );
      started.push(shield);
      fleet.shields.push(shield);
    }
    const parents = fleet.shields.map((shield) => ({
      name: shield.name,
      url: shield.url,
      tier: 'parent',
      ...PARENT,
    }));
    const peers = options.edgesForwardPurges
      ? await Promise.all(
          fleet.shields.map(async (shield, i) => ({
            url: options.purgePeer ? await options.purgePeer(shield.admin, i) : shield.admin,
            token: FLEET_TOKEN,
          })),
        )
      : [];
    for (let i = 0; i < options.edges; i++) {
      const name = `edge-${i + 1}`;
      const edge = await serveProcess(
        name,
        dir,
        {
          proxy: { via: name },
          tiers: { id: name, secret: FLEET_SECRET },
          origins: parents,
          sites: [{ name: 'shop', hosts: ['*'], origins: parents.map((p) => p.name) }],
          purge: { peers, retry: { initial: '50ms', max: '1s' } },
          ...options.edge,
        },
        await freePort(),
      );
      started.push(edge);
      fleet.edges.push(edge);
    }
  } catch (error) {
    await fleet.close();
    throw error;
  }
  return fleet;
}
