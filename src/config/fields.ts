/**
 * Schema pieces every config section shares: a size or a duration, given as a plain number or
 * as a string with a unit (units.ts), validated into bytes or milliseconds with one message.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

/** Bytes: a number, or a string with a unit (8KiB, 256MiB, 4GiB). */
export function sizeField() {
  return z
    .union([z.number(), z.string()], {
      error: 'expected a size: bytes, or a string with a unit (e.g. 8KiB, 256MiB)',
    })
    .transform((value, ctx) => {
      const parsed = parseSize(value);
      if (parsed === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (e.g. 8KiB, 256MiB, 1048576)` });
        return z.NEVER;
      }
      return parsed;
    });
}

/** Milliseconds: a number, or a string with a unit (250ms, 30s, 2m). */
export function durationField() {
  return z
    .union([z.number(), z.string()], {
      error: 'expected a duration: milliseconds, or a string with a unit (e.g. 250ms, 30s, 2m)',
    })
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (e.g. 250ms, 30s, 2m)` });
        return z.NEVER;
      }
      return ms;
    });
}
