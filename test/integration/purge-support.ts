/** Shared by the purge and admin tests: a node with its admin listener, and admin calls. */
import type { ConfigInput } from '../../src/config/schema.ts';
import { request, type TestResponse } from '../helpers/http.ts';
import { startNode, type TestNode, type TestNodeOptions } from '../helpers/node.ts';
import { until } from '../helpers/wait.ts';

export const TOKEN = 'test-admin-token-0123456789';

export interface AdminNode extends TestNode {
  readonly admin: string;
  /** The primary key prefix of the node's own address: `http://127.0.0.1:PORT`. */
  readonly base: string;
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<TestResponse>;
  purge(body: unknown): Promise<{ purged: number; soft: boolean; sequence: number; warning?: string }>;
}

export async function startAdminNode(
  options: TestNodeOptions & { admin?: Partial<ConfigInput['admin']>; purge?: ConfigInput['purge'] },
): Promise<AdminNode> {
  const node = await startNode({
    ...options,
    config: {
      ...options.config,
      admin: { enabled: true, listen: '127.0.0.1:0', token: TOKEN, ...options.admin },
      ...(options.purge ? { purge: options.purge } : {}),
    },
  });
  const admin = `http://${node.node.adminAddress}`;
  const call: AdminNode['call'] = (method, path, body, token = TOKEN) =>
    request(`${admin}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return Object.assign(node, {
    admin,
    base: node.url,
    call,
    async purge(body: unknown) {
      const response = await call('POST', '/purge', body);
      if (response.status !== 200) throw new Error(`purge answered ${response.status}: ${response.text}`);
      return JSON.parse(response.text) as {
        purged: number;
        soft: boolean;
        sequence: number;
        warning?: string;
      };
    },
  });
}

/** Polls `check` for at most `ms` (the one wait helper, test/helpers/wait.ts); true as soon as it holds. */
export function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  return until(check, ms);
}
