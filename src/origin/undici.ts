/**
 * undici, loaded when the first origin request or health probe needs it rather than at
 * startup: it is the largest module the node loads (about 20 MiB of resident memory measured
 * with its HTTP parser), and a node that serves only hits never needs it.
 */
type Undici = typeof import('undici');

let loading: Promise<Undici> | undefined;

export function loadUndici(): Promise<Undici> {
  loading ??= import('undici');
  return loading;
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
  undici: Undici,
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
