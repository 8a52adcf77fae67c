/**
 * Starts a real edge node for a test: port 0 listener, a temp LMDB directory, silent
 * logs, and an injected clock. `close()` stops it and removes the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createEdgeNode, type EdgeNode, validateConfig } from '../../src/index.ts';
import { type RequestOptions, request, type TestResponse } from './http.ts';

export interface TestNode {
  readonly node: EdgeNode;
  readonly url: string;
  readonly dir: string;
  get(path: string, options?: RequestOptions): Promise<TestResponse>;
  close(options?: { keepDir?: boolean }): Promise<void>;
}

export interface TestNodeOptions {
  origin: string;
  now?: () => number;
  config?: Partial<ConfigInput>;
  dir?: string;
  cache?: Record<string, unknown>;
  /** GeoIP lookup for country rules. */
  geo?: import('../../src/security/ip-rules.ts').GeoLookup;
  /** A logger of the test's own (default: silent). */
  logger?: import('pino').Logger;
  /** Bound of the records the node keeps decoded, in bytes (default 64 MiB). */
  decodedBytes?: number;
  /** How long a replaced or removed body stays readable (default 60 s). */
  bodyGraceMs?: number;
}

export async function startNode(options: TestNodeOptions): Promise<TestNode> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'strata-test-'));
  const raw = {
    listeners: [{ listen: '127.0.0.1:0' }],
    origins: [{ name: 'origin', url: options.origin, connectTimeout: 2000, responseTimeout: 5000 }],
    sites: [{ name: 'default', hosts: ['*'], origins: ['origin'] }],
    admin: { enabled: false },
    logging: { level: 'silent' },
    ...options.config,
    cache: { dir: join(dir, 'cache'), ...options.cache },
  };
  const result = validateConfig(raw);
  if ('problems' in result) throw new Error(`test config invalid: ${JSON.stringify(result.problems)}`);
  const node = await createEdgeNode({
    config: result.config,
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.now ? { now: options.now } : {}),
    ...(options.geo ? { geo: options.geo } : {}),
    ...(options.decodedBytes !== undefined ? { decodedBytes: options.decodedBytes } : {}),
    ...(options.bodyGraceMs !== undefined ? { bodyGraceMs: options.bodyGraceMs } : {}),
  });
  const url = `http://${node.addresses[0]}`;
  return {
    node,
    url,
    dir,
    /** One request; resolves after the node has finished storing what it fetched. */
    async get(path, requestOptions) {
      const response = await request(`${url}${path}`, requestOptions);
      await node.idle();
      return response;
    },
    async close(closeOptions) {
      await node.close();
      if (!closeOptions?.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
