/** Log lines a test reads: a pino destination that parses each JSON line into an array. */
import { Writable } from 'node:stream';

/** A log destination that parses each JSON line into `lines`. */
export function sinkInto(lines: Array<Record<string, unknown>>): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
}
