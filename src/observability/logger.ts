/**
 * The one root logger (pino): ISO times, lines buffered and written at least every
 * `flushInterval` (a quiet node's lines are never held back for long).
 */
import { type Logger, pino } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Where lines go: a file descriptor (1 = stdout) or a destination stream for tests. */
  destination?: number | NodeJS.WritableStream;
  /** Longest a line waits in the buffer (ms); default 1000. */
  flushInterval?: number;
}

/** Bytes gathered before a write when lines come quickly; a timer writes the rest. */
const MIN_WRITE = 4096;

export function createLogger(options: LoggerOptions): Logger {
  const destination =
    typeof options.destination === 'object'
      ? options.destination
      : pino.destination({
          dest: options.destination ?? 1,
          sync: false,
          minLength: MIN_WRITE,
          periodicFlush: options.flushInterval ?? 1000,
        });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', '*.token', 'headers.authorization', 'req.headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export type { Logger };
