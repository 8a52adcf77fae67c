/**
 * Accept-Encoding negotiation (RFC 9110 §12.5.3): a request's field is reduced to one bucket —
 * the content coding the node would send it — so requests that would be answered the same way
 * share one variant and one origin fetch. Pure: no I/O, no configuration read here.
 */

/** The codings the node can produce and store, and identity (no coding). */
export type EncodingBucket = 'zstd' | 'br' | 'gzip' | 'identity';
export type ContentCoding = Exclude<EncodingBucket, 'identity'>;

/** The server's preference when a client weighs several codings equally (configurable per site). */
export const DEFAULT_ENCODINGS: readonly ContentCoding[] = ['zstd', 'br', 'gzip'];

/** A coding's weight, 0–1000 (q-values have at most three decimals, §12.4.2). */
type Weights = Map<string, number>;

/**
 * §12.4.2: `weight = OWS ";" OWS "q=" qvalue`, `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
 * An invalid qvalue makes the member meaningless: it is ignored rather than guessed at.
 */
function parseQ(raw: string): number | undefined {
  if (!/^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/.test(raw)) return undefined;
  return Math.round(Number(raw) * 1000);
}

/** Codings named by the field (lower case) → weight. `x-gzip` is gzip (§8.4.1.3). */
export function parseAcceptEncoding(value: string | readonly string[]): Weights {
  const weights: Weights = new Map();
  const joined = typeof value === 'string' ? value : value.join(',');
  for (const member of joined.split(',')) {
    const [rawName, ...params] = member.split(';');
    let name = (rawName ?? '').trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let q: number | undefined = 1000;
    for (const param of params) {
      const [key, raw] = param.split('=');
      if (key?.trim().toLowerCase() === 'q') q = parseQ((raw ?? '').trim());
    }
    if (q === undefined) continue;
    // A coding named twice: the highest weight given wins (the field is a set, not a sequence).
    weights.set(name, Math.max(q, weights.get(name) ?? 0));
  }
  return weights;
}

/** §12.5.3: a coding not listed takes the weight of `*` when present, else it is not acceptable. */
function weightOf(weights: Weights, coding: string): number {
  return weights.get(coding) ?? weights.get('*') ?? 0;
}

/**
 * §12.5.3: "If the representation has no content coding, then it is acceptable by default
 * unless specifically excluded by the Accept-Encoding header field stating either
 * 'identity;q=0' or '*;q=0' without a more specific entry for 'identity'."
 */
function identityAcceptable(weights: Weights): boolean {
  const explicit = weights.get('identity');
  if (explicit !== undefined) return explicit > 0;
  const star = weights.get('*');
  return star === undefined || star > 0;
}

/**
 * The bucket a request falls in, or null when none of the node's codings and not identity is
 * acceptable (the only case for 406). The highest weight wins; ties go to the server's order
 * in `preference`; identity wins only when no coding outweighs it.
 *
 * §12.5.3: "If no Accept-Encoding header field is in the request, any content coding is
 * considered acceptable by the user agent." In practice clients that send none (curl, many
 * libraries) cannot decode: a missing field gets identity, as every CDN does.
 * An empty field value means "no coding is wanted": identity.
 */
export function negotiateEncoding(
  value: string | readonly string[] | undefined,
  preference: readonly ContentCoding[] = DEFAULT_ENCODINGS,
): EncodingBucket | null {
  if (value === undefined) return 'identity';
  const weights = parseAcceptEncoding(value);
  let best: EncodingBucket | null = null;
  let bestWeight = 0;
  for (const coding of preference) {
    const weight = weightOf(weights, coding);
    if (weight > bestWeight) {
      best = coding;
      bestWeight = weight;
    }
  }
  if (identityAcceptable(weights)) {
    // identity without an explicit weight is acceptable at any level below the codings listed.
    const identity = weights.get('identity') ?? weights.get('*') ?? 1;
    if (best === null || identity > bestWeight) return 'identity';
  }
  return best;
}

/** Whether a stored representation with `coding` may be sent to a request with this field. */
export function acceptsCoding(
  value: string | readonly string[] | undefined,
  coding: EncodingBucket,
): boolean {
  if (value === undefined) return true;
  const weights = parseAcceptEncoding(value);
  if (coding === 'identity') return identityAcceptable(weights);
  return weightOf(weights, coding) > 0;
}

/**
 * Whether no representation at all can satisfy the field: identity is excluded and every
 * coding it names (and `*`) has weight 0 — `identity;q=0`, `*;q=0`, `gzip;q=0, identity;q=0`.
 * The only case answered 406 (§15.5.7): a field that still accepts some coding (`deflate,
 * identity;q=0`) goes to the origin, which may have it.
 */
export function acceptsNothing(value: string | readonly string[] | undefined): boolean {
  if (value === undefined) return false;
  const weights = parseAcceptEncoding(value);
  if (identityAcceptable(weights)) return false;
  for (const weight of weights.values()) if (weight > 0) return false;
  return true;
}
