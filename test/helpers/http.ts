/** A minimal HTTP/1.1 client for tests: the whole response, or how it ended when cut short. */
import { type Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** False when the body was cut short (connection closed or aborted mid-body). */
  complete: boolean;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  agent?: Agent;
  /** Local address to send from (127.0.0.2, ...): the node sees it as the client address. */
  localAddress?: string;
  /** Send this request target as is (URL parsing would normalize dot segments and quotes). */
  rawPath?: string;
  /** Reject (and close the connection) when the response has not ended within this many ms. */
  timeoutMs?: number;
}

export function request(url: string, options: RequestOptions = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: options.rawPath ?? target.pathname + target.search,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: options.agent ?? false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let settled = false;
        const finish = (complete: boolean) => {
          if (settled) return;
          settled = true;
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString('utf8'),
            complete,
          });
        };
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => finish(res.complete));
        res.on('aborted', () => finish(false));
        res.on('error', () => finish(false));
        res.on('close', () => finish(res.complete));
      },
    );
    req.on('error', reject);
    if (options.timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        reject(new Error(`no response within ${options.timeoutMs} ms: ${options.method ?? 'GET'} ${url}`));
        req.destroy();
      }, options.timeoutMs);
      req.on('close', () => clearTimeout(timer));
    }
    req.end(options.body);
  });
}
