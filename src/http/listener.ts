/**
 * Client listeners: node:http servers with strict limits. They hand every request to
 * one handler and know nothing of caching.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ListenerOptions {
  host: string;
  port: number;
  maxHeaderSize: number;
  requestTimeout: number;
  keepAliveTimeout: number;
}

export interface Listener {
  readonly server: Server;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions, handler: RequestHandler): Promise<Listener> {
  const server = createServer(
    {
      maxHeaderSize: options.maxHeaderSize,
      requestTimeout: options.requestTimeout,
      headersTimeout: Math.min(options.requestTimeout, 20_000),
      keepAliveTimeout: options.keepAliveTimeout,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
    },
    handler,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: server.address() as AddressInfo,
    close: () => closeGracefully(server),
  };
}

/** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections. */
export function closeGracefully(server: Server, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
