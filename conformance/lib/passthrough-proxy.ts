/**
 * A forwarding proxy that stores nothing: the baseline for checking the runner itself
 * (`npm run conformance -- --target passthrough`). It shows which suite tests a cache that never
 * reuses a response passes or fails, so a regression in the harness is not taken for one in Strata.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { LOOPBACK } from './net.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
]);

export class PassthroughProxy {
  readonly #originPort: number;
  #server: Server | undefined;
  port = 0;

  constructor(originPort: number) {
    this.#originPort = originPort;
  }

  get url(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((clientRequest, clientResponse) => {
      const headers = Object.fromEntries(
        Object.entries(clientRequest.headers).filter(([name]) => !HOP_BY_HOP.has(name)),
      );
      const originRequest = httpRequest(
        {
          host: LOOPBACK,
          port: this.#originPort,
          method: clientRequest.method,
          path: clientRequest.url,
          headers,
          timeout: 10_000,
        },
        (originResponse) => {
          const raw = originResponse.rawHeaders;
          const out: string[] = [];
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const name = raw[i] ?? '';
            if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1] ?? '');
          }
          clientResponse.writeHead(originResponse.statusCode ?? 502, originResponse.statusMessage, out);
          originResponse.pipe(clientResponse);
        },
      );
      originRequest.on('error', () => {
        if (!clientResponse.headersSent) clientResponse.writeHead(502);
        clientResponse.destroy();
      });
      clientRequest.pipe(originRequest);
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
