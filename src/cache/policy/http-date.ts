/** HTTP-date parsing (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms. */

const IMF =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850 =
  /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/** The last IMF-fixdate value parsed and its result (it does not depend on `now`). */
let lastImf: string | undefined;
let lastImfMs: number | undefined;

/**
 * Milliseconds since the epoch, or undefined when the value is not an HTTP-date. `now` is the
 * instant the date was received, the reference for RFC 850 two-digit years; without it the
 * years are read in the window 1970–2069. No wall clock is read here.
 */
export function parseHttpDate(value: string | undefined, now?: number): number | undefined {
  if (value === undefined) return undefined;
  // The same Date comes on every response of the second it was sent in.
  if (value === lastImf) return lastImfMs;
  const text = value.trim();
  if (IMF.test(text)) {
    const ms = validDate(Date.parse(text), Number(text.slice(5, 7)));
    lastImf = value;
    lastImfMs = ms;
    return ms;
  }
  if (RFC850.test(text)) {
    // Two-digit years: RFC 9110 §5.6.7 — more than 50 years in the future means the past century.
    const parts = /^\w+, (\d{2})-(\w{3})-(\d{2}) (\d{2}:\d{2}:\d{2}) GMT$/.exec(text)!;
    let year = 2000 + Number(parts[3]);
    const reference = now === undefined ? 2019 : new Date(now).getUTCFullYear();
    if (year > reference + 50) year -= 100;
    return validDate(Date.parse(`${parts[1]} ${parts[2]} ${year} ${parts[4]} GMT`), Number(parts[1]));
  }
  if (ASCTIME.test(text)) {
    const parts = /^\w{3} (\w{3}) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) (\d{4})$/.exec(text)!;
    return validDate(Date.parse(`${parts[2]} ${parts[1]} ${parts[4]} ${parts[3]} GMT`), Number(parts[2]));
  }
  return undefined;
}

/**
 * Expires (RFC 9111 §5.3) as caches read it in practice: the day name, the month name and `GMT`
 * in any letter case (`THU, 18 AUG 2050 02:01:18 gmt`); the grammar is otherwise as strict as
 * `parseHttpDate` (no other zone, no missing comma, no one-digit hour). Only Expires is read so:
 * Date, Last-Modified and the conditional request fields keep the exact grammar, since a date
 * misread there changes which response is current, not only how long one is fresh.
 */
export function parseExpires(value: string | undefined, now?: number): number | undefined {
  if (value === undefined) return undefined;
  const strict = parseHttpDate(value, now);
  if (strict !== undefined) return strict;
  return parseHttpDate(
    value.replace(/[A-Za-z]+/g, (word) =>
      word.length === 3 && word.toUpperCase() === 'GMT'
        ? 'GMT'
        : word.charAt(0).toUpperCase() + word.slice(1).toLowerCase(),
    ),
    now,
  );
}

/**
 * A date that matched the grammar but names no real instant (hour 25, 32 January, or a
 * 30 February that Date.parse would roll into March) is not a date: undefined, never NaN.
 */
function validDate(ms: number, day: number): number | undefined {
  if (Number.isNaN(ms) || new Date(ms).getUTCDate() !== day) return undefined;
  return ms;
}

export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
