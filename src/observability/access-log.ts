/**
 * The access log: one line per request, as JSON (every field; default) or in the Apache/nginx
 * combined format, to standard output or to a file. Lines are buffered and written at least
 * every `flushInterval`; a file is reopened on `reopen()` (SIGUSR1, after logrotate moved it).
 */
import { type Logger, pino } from 'pino';

/** One request as the log phase describes it; undefined fields are left out of a JSON line. */
export interface AccessEntry {
  id: string;
  /** The client: the first untrusted hop behind trusted proxies, else the peer. */
  client: string;
  /** The peer's address when it is a trusted proxy (differs from client). */
  peer: string | undefined;
  site: string | undefined;
  method: string;
  host: string;
  path: string;
  /** HTTP/1.0, HTTP/1.1 or HTTP/2. */
  protocol: string;
  tls: boolean;
  status: number | undefined;
  cache: string;
  insert: string | undefined;
  rule: string | undefined;
  origin: string | undefined;
  originStatus: number | undefined;
  originMs: number | undefined;
  attempts: number | undefined;
  age: number | undefined;
  ttl: number | undefined;
  range: string | undefined;
  requestBytes: number | undefined;
  bytes: number;
  ms: number;
  complete: boolean | undefined;
  referer: string | undefined;
  ua: string | undefined;
  err: string | undefined;
  errDetail: string | undefined;
  security: string | undefined;
  /** A WebSocket tunnel's: bytes the client sent through it (`bytes`: those it was sent). */
  clientBytes?: number;
  /** A WebSocket tunnel's: what ended it (client, origin, idle, shutdown). */
  closedBy?: string;
}

export interface AccessLogOptions {
  format: 'json' | 'combined';
  /** A file to append to; standard output when absent. */
  file: string | undefined;
  /** Longest a line waits in the buffer (ms). */
  flushInterval: number;
  /** The root logger: JSON lines to standard output go through it. */
  log: Logger;
}

const MIN_WRITE = 4096;

export class AccessLog {
  readonly format: 'json' | 'combined';
  readonly #json: Logger | undefined;
  readonly #destination: ReturnType<typeof pino.destination> | undefined;
  readonly #file: boolean;

  constructor(options: AccessLogOptions) {
    this.format = options.format;
    this.#file = options.file !== undefined;
    if (options.format === 'json' && options.file === undefined) {
      this.#json = options.log;
      return;
    }
    this.#destination = pino.destination({
      dest: options.file ?? 1,
      sync: false,
      minLength: MIN_WRITE,
      periodicFlush: options.flushInterval,
      mkdir: options.file !== undefined,
    });
    this.#json =
      options.format === 'json'
        ? pino(
            { level: 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
            this.#destination,
          )
        : undefined;
  }

  /** A client request's line. */
  request(entry: AccessEntry): void {
    if (this.#json !== undefined) this.#json.info(entry, 'request completed');
    else this.#destination!.write(`${combinedLine(entry, new Date())}\n`);
  }

  /** A background revalidation's line (JSON only: the combined format has no place for it). */
  revalidation(entry: Record<string, unknown>): void {
    this.#json?.info(entry, 'background revalidation completed');
  }

  /** Opens the file again under its name (after a rotation moved it away). */
  reopen(): void {
    this.#destination?.reopen();
  }

  /** Writes what is buffered, synchronously (at shutdown). */
  flush(): void {
    try {
      this.#destination?.flushSync();
    } catch {
      // Nothing buffered, or the destination is not open yet: nothing to lose.
    }
  }

  close(): void {
    this.flush();
    if (this.#file) this.#destination?.end();
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `%h - - [%d/%b/%Y:%H:%M:%S %z] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"` (Apache's
 * combined, nginx's default), in UTC. Quotes, backslashes and control characters in the
 * request line and the quoted fields are escaped as \xHH, as nginx does.
 */
export function combinedLine(entry: AccessEntry, time: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${pad(time.getUTCDate())}/${MONTHS[time.getUTCMonth()]}/${time.getUTCFullYear()}:` +
    `${pad(time.getUTCHours())}:${pad(time.getUTCMinutes())}:${pad(time.getUTCSeconds())} +0000`;
  const version = entry.protocol === 'HTTP/2' ? 'HTTP/2.0' : entry.protocol;
  const line = entry.path === '' ? '-' : `${entry.method} ${entry.path} ${version}`;
  return (
    `${entry.client || '-'} - - [${stamp}] "${quoted(line)}" ${entry.status ?? 0} ` +
    `${entry.bytes > 0 ? entry.bytes : '-'} "${quoted(entry.referer ?? '-')}" "${quoted(entry.ua ?? '-')}"`
  );
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
const UNSAFE = /["\\\x00-\x1f\x7f-\xff]/g;

function quoted(value: string): string {
  return value.replace(UNSAFE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
