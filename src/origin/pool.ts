/**
 * Origins and the pools that reach them (undici, keep-alive). A site's pool tries its
 * origins in order; a request that failed to connect is retried on the next one, since
 * nothing of it reached an origin. Each attempt carries the Host of the origin it goes to,
 * and a failure names the origin that failed.
 */
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { OriginConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import { originError } from './errors.ts';
import { originTls } from './tls.ts';

export interface OriginRequest {
  method: string;
  path: string;
  /** The client's authority: the Host sent to an origin without its own `hostHeader`. */
  host: string;
  /** End-to-end fields; `host` is set per attempt by the pool. */
  headers: Record<string, string | string[]>;
  body?: Readable | undefined;
  signal?: AbortSignal;
}

export interface OriginResponse {
  origin: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** ms from sending until headers arrived. */
  ms: number;
}

export class Origin {
  readonly name: string;
  readonly config: OriginConfig;
  readonly #pool: Pool;

  constructor(config: OriginConfig) {
    this.name = config.name;
    this.config = config;
    this.#pool = new Pool(config.url, {
      connections: config.connections,
      connect: { timeout: config.connectTimeout, ...originTls(config) },
      allowH2: false,
      headersTimeout: config.responseTimeout,
      bodyTimeout: config.bodyTimeout,
      keepAliveTimeout: 4000,
      pipelining: 1,
    });
  }

  async request(request: OriginRequest): Promise<OriginResponse> {
    const started = performance.now();
    const headers = request.headers;
    headers.host = this.config.hostHeader ?? request.host;
    try {
      const response = await this.#pool.request({
        method: request.method as 'GET',
        path: request.path,
        headers,
        body: request.body ?? null,
        signal: request.signal ?? null,
      });
      return {
        origin: this.name,
        status: response.statusCode,
        headers: response.headers,
        body: response.body as unknown as Readable,
        ms: performance.now() - started,
      };
    } catch (error) {
      throw originError(error, this.name);
    }
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Ends every connection at once, failing requests still running (a drain past its deadline). */
  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/** Told of every failed attempt, with the origin that failed (metrics, logs). */
export type FailureListener = (origin: string, error: EdgeError) => void;

export class OriginPool {
  readonly origins: readonly Origin[];
  readonly #onFailure: FailureListener | undefined;

  constructor(origins: readonly Origin[], onFailure?: FailureListener) {
    if (origins.length === 0) throw new EdgeError('EDGE_ERR_ORIGIN_UNAVAILABLE', 'a site has no origins');
    this.origins = origins;
    this.#onFailure = onFailure;
  }

  /**
   * Tries origins in order; moves on only when the request cannot have reached the previous one.
   * Every failed attempt is reported to the failure listener; the error thrown is the last one,
   * naming (in `origin`) the origin it came from.
   */
  async request(request: OriginRequest): Promise<OriginResponse> {
    let lastError: EdgeError | undefined;
    const replayable = request.body === undefined;
    for (const origin of this.origins) {
      try {
        return await origin.request(request);
      } catch (error) {
        lastError = error as EdgeError;
        this.#onFailure?.(origin.name, lastError);
        const neverSent =
          lastError.code === 'EDGE_ERR_ORIGIN_CONNECT' ||
          lastError.code === 'EDGE_ERR_ORIGIN_DNS' ||
          lastError.code === 'EDGE_ERR_ORIGIN_CONNECT_TIMEOUT';
        if (!neverSent || !replayable || request.signal?.aborted) throw lastError;
      }
    }
    throw lastError!;
  }
}
