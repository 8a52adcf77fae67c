/** The one root logger (pino). Access-log lines go through an asynchronous destination. */
import { type Logger, pino } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Where lines go: a file descriptor (1 = stdout) or a destination stream for tests. */
  destination?: number | NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination =
    typeof options.destination === 'object'
      ? options.destination
      : pino.destination({ dest: options.destination ?? 1, sync: false, minLength: 4096 });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', '*.token', 'headers.authorization', 'req.headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export type { Logger };
