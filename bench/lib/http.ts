/** HTTP requests for priming caches and checking what they answer (no keep-alive unless given an agent). */
import http from 'node:http';
import https from 'node:https';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
}

export function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent } = {},
  timeoutMs = 10000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // https: the bench certificate is self-signed; what is checked here is the answer, not the chain.
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(
      url,
      {
        method: init.method ?? 'GET',
        headers: init.headers,
        agent: init.agent ?? false,
        rejectUnauthorized: false,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
        res.once('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end(init.body);
  });
}

/** Waits until a URL answers with any status. */
export async function waitForAnswer(url: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      await request(url, {}, 2000);
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** hit, miss, or what the cache status header said (Cache-Status of strata, nginx, varnish, trafficserver). */
export function cacheOutcome(answer: Answer): string {
  const header = answer.headers['cache-status'];
  const value = Array.isArray(header) ? header.join(', ') : (header ?? '');
  if (value === '') return 'none';
  if (/(^|[;\s,])hit\b/i.test(value)) return 'hit';
  if (/miss|fwd=/i.test(value)) return 'miss';
  return value;
}

export interface OriginCounts {
  total: number;
  paths: Record<string, number>;
}

export async function originCounts(originUrl: string): Promise<OriginCounts> {
  const res = await fetch(`${originUrl}/__count`);
  return (await res.json()) as OriginCounts;
}
