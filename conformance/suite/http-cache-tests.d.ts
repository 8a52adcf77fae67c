/** Types for the parts of the http-cache-tests package (plain JavaScript) that the runner uses. */

declare module 'http-cache-tests/server/handle-config.mjs' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default function handle(
    pathSegs: string[],
    request: IncomingMessage,
    response: ServerResponse,
  ): void;
}
declare module 'http-cache-tests/server/handle-test.mjs' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default function handle(
    pathSegs: string[],
    request: IncomingMessage,
    response: ServerResponse,
  ): void;
}
declare module 'http-cache-tests/server/handle-state.mjs' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default function handle(
    pathSegs: string[],
    request: IncomingMessage,
    response: ServerResponse,
  ): void;
}
declare module 'http-cache-tests/server/handle-file.mjs' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default function handle(url: URL, request: IncomingMessage, response: ServerResponse): void;
}

declare module 'http-cache-tests/tests/index.mjs' {
  const sections: unknown[];
  export default sections;
}
declare module 'http-cache-tests/tests/surrogate-control.mjs' {
  const section: unknown;
  export default section;
}

declare module 'http-cache-tests/client/runner.mjs' {
  export type SuiteFetch = (url: string, init: Record<string, unknown>) => Promise<unknown>;
  export function runTests(
    sections: unknown[],
    fetch: SuiteFetch,
    browserCache: boolean,
    base: string,
    chunkSize?: number,
  ): Promise<void>;
  export function getResults(): Record<string, unknown>;
}

declare module 'node-fetch' {
  const fetch: (url: string, init?: Record<string, unknown>) => Promise<unknown>;
  export default fetch;
}
