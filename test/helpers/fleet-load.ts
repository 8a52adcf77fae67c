/**
 * What the fleet test and the fleet bench drive: a versioned origin (each object answers its
 * current version; a purge run bumps it first), a delaying relay for purge deliveries, and the
 * purge-race run with its stale-response check.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FLEET_HOST, type FleetProcess } from './fleet.ts';
import { request } from './http.ts';
import type { Route } from './origin.ts';

/** Answers `<name> v<version>` for any path, cacheable for 5 minutes, after `delayMs`. */
export function versionedRoute(versions: Map<string, number>, delayMs = 0): Route {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const version = versions.get(path) ?? 1;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    res.writeHead(200, { 'cache-control': 'max-age=300', 'content-type': 'application/json' });
    res.end(JSON.stringify({ path, version }));
  };
}

/**
 * An HTTP relay that forwards every request to `target` after `delayMs`: put in front of a
 * shield's admin API, it makes purges reach the shield after they reached the edges.
 */
export async function delayingRelay(
  target: string,
  delayMs: number,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      setTimeout(() => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers))
          if (typeof value === 'string' && name !== 'host' && name !== 'content-length')
            headers[name] = value;
        fetch(`${target}${req.url}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        })
          .then(async (response) => {
            res.writeHead(response.status, {
              'content-type': response.headers.get('content-type') ?? 'text/plain',
            });
            res.end(Buffer.from(await response.arrayBuffer()));
          })
          .catch(() => {
            res.writeHead(502);
            res.end();
          });
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export interface RaceOptions {
  edges: FleetProcess[];
  versions: Map<string, number>;
  /** The object paths hit and purged. */
  paths: string[];
  /** How long the run lasts (ms), at least. */
  durationMs: number;
  /**
   * Past the duration, the run goes on until this many requests were answered and purges sent
   * (a loaded machine is slower), at most 8 times the duration in all.
   */
  minRequests?: number;
  minPurges?: number;
  purgesPerSecond: number;
  /** Requests in flight at once. */
  concurrency: number;
}

export interface RaceResult {
  requests: number;
  errors: number;
  purges: number;
  /** Responses older than a purge that the same edge had acknowledged before the request began. */
  stale: number;
  /** The first few stale responses, described. */
  staleExamples: string[];
  /** Purge acknowledgement latency at the edges (ms), each purge sent to every edge. */
  ackMs: number[];
}

interface Ack {
  version: number;
  at: number;
}

/**
 * Hits every path at every edge while purging one path at a time (its version bumped at the
 * origin first, then the purge sent to every edge): every response must carry at least the
 * version whose purge that edge acknowledged before the request was sent.
 */
export async function purgeRace(options: RaceOptions): Promise<RaceResult> {
  const { edges, versions, paths } = options;
  const acks = edges.map(() => new Map<string, Ack>());
  const result: RaceResult = { requests: 0, errors: 0, purges: 0, stale: 0, staleExamples: [], ackMs: [] };
  const started = performance.now();
  const end = started + options.durationMs;
  const cap = started + 8 * options.durationMs;
  const going = (done: () => boolean) => {
    const now = performance.now();
    return now < end || (now < cap && !done());
  };
  const enoughRequests = () => result.requests >= (options.minRequests ?? 0);
  const enoughPurges = () => result.purges >= (options.minPurges ?? 0);
  let turn = 0;
  const client = async (): Promise<void> => {
    for (let i = 0; i < 100_000 && going(() => enoughRequests() && enoughPurges()); i++) {
      const edge = turn++ % edges.length;
      const path = paths[Math.floor(Math.random() * paths.length)]!;
      // What this edge acknowledged before the request leaves: the version it must not undercut.
      const floor = acks[edge]!.get(path)?.version ?? 1;
      try {
        const response = await request(`${edges[edge]!.url}${path}`, { headers: { host: FLEET_HOST } });
        result.requests++;
        if (response.status !== 200) {
          result.errors++;
          continue;
        }
        const version = (JSON.parse(response.text) as { version: number }).version;
        if (version < floor) {
          result.stale++;
          if (result.staleExamples.length < 5)
            result.staleExamples.push(
              `${edges[edge]!.name} ${path}: v${version} after v${floor} acknowledged; ${String(response.headers['cache-status'])}`,
            );
        }
      } catch {
        result.requests++;
        result.errors++;
      }
    }
  };
  /** One purge of `path`: its version bumped at the origin, then sent to every edge at once. */
  const purgeOnce = async (path: string): Promise<void> => {
    const version = (versions.get(path) ?? 1) + 1;
    versions.set(path, version);
    const started = performance.now();
    await Promise.all(
      edges.map(async (edge, i) => {
        const answer = await edge.purge({ urls: [`http://${FLEET_HOST}${path}`] });
        if (answer.status !== 200) throw new Error(`${edge.name} refused a purge: ${JSON.stringify(answer)}`);
        const acked = acks[i]!.get(path);
        // Purges of one path may overlap: the floor is the newest version acknowledged.
        if (acked === undefined || acked.version < version)
          acks[i]!.set(path, { version, at: performance.now() });
        result.ackMs.push(performance.now() - started);
      }),
    );
    result.purges++;
  };
  /** Starts a purge every 1/purgesPerSecond s, whether or not the previous ones are acknowledged. */
  const purger = async (): Promise<void> => {
    const every = 1000 / options.purgesPerSecond;
    const running = new Set<Promise<void>>();
    const first = performance.now();
    for (let n = 0; n < 100_000 && going(enoughPurges); n++) {
      const run = purgeOnce(paths[n % paths.length]!);
      running.add(run);
      void run.finally(() => running.delete(run)).catch(() => {});
      const wait = first + (n + 1) * every - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    await Promise.all(running);
  };
  await Promise.all([purger(), ...Array.from({ length: options.concurrency }, client)]);
  return result;
}
