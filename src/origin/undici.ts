/**
 * The parts of undici the node uses (a pool per origin, an agent for health probes, the
 * connector), loaded when the first origin request or health probe needs them rather than at
 * startup: a node that serves only hits never needs them. Loaded from their modules, not from
 * the package's index, which loads everything undici has (fetch, WebSocket, its cache, mocks,
 * proxies): 110 ms and 28 MiB of resident memory on the first origin request, where these parts
 * take 56 ms and 15.5 MiB (docs/performance.md). The index adds the request API to the
 * dispatchers' prototype; so does this module. The paths are those of the undici version
 * package.json pins.
 */
import { createRequire } from 'node:module';

type Undici = typeof import('undici');

/** What the node uses of undici. */
export interface UndiciParts {
  Pool: Undici['Pool'];
  Agent: Undici['Agent'];
  buildConnector: Undici['buildConnector'];
}

let parts: UndiciParts | undefined;

function load(): UndiciParts {
  const require = createRequire(import.meta.url);
  const Dispatcher = require('undici/lib/dispatcher/dispatcher');
  Object.assign(Dispatcher.prototype, require('undici/lib/api'));
  return {
    Pool: require('undici/lib/dispatcher/pool'),
    Agent: require('undici/lib/dispatcher/agent'),
    buildConnector: require('undici/lib/core/connect'),
  };
}

export function loadUndici(): Promise<UndiciParts> {
  try {
    parts ??= load();
    return Promise.resolve(parts);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * The code an origin connection's reset is reported under instead of `ECONNRESET`. undici
 * takes an `ECONNRESET` that arrives while a body runs until the connection closes (no
 * Content-Length, not chunked) for the end of that body (a workaround for macOS), so a body
 * cut short by a reset was passed on, and stored, as whole. Under another code the reset is
 * an error there too, as it is everywhere else.
 */
export const ORIGIN_RESET = 'EDGE_ORIGIN_RESET';

type Connector = import('undici').buildConnector.connector;

/** undici's connector for `options`, its sockets reporting resets as `ORIGIN_RESET`. */
export function originConnector(
  undici: UndiciParts,
  options: import('undici').buildConnector.BuildOptions,
): Connector {
  const connect = undici.buildConnector(options);
  return (opts, callback) =>
    connect(opts, (...args) => {
      // Before undici's own listener, which is added once the socket is handed over.
      args[1]?.prependListener('error', recodeReset);
      callback(...args);
    });
}

function recodeReset(error: NodeJS.ErrnoException): void {
  if (error.code === 'ECONNRESET') error.code = ORIGIN_RESET;
}
