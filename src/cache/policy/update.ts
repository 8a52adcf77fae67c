/**
 * Which stored response a 304 may update (RFC 9111 §4.3.4). Pure: validators in, a verdict out.
 */

/** The validators of a stored response, or of a 304 answering a validation request. */
export interface Validators {
  etag?: string | undefined;
  lastModified?: string | undefined;
}

/** RFC 9110 §8.8.3: an entity tag is weak when it starts with `W/`. */
export function isWeakEtag(etag: string): boolean {
  return etag.startsWith('W/');
}

/**
 * RFC 9111 §4.3.4, selecting the stored response to update with a 304:
 *
 * - "If the new response contains a strong validator ..., then that strong validator identifies
 *   the selected representation for update. ... If none of the stored responses contain the same
 *   strong validator, then the cache MUST NOT use the new response to update any stored responses."
 * - "If the new response contains no strong validator but does contain one or more weak
 *   validators, and those validators correspond to one of the cache's stored responses, then the
 *   most recent of those matching stored responses is identified for update."
 * - "If the new response does not include any form of validator ..., and there is only one stored
 *   response, and that stored response also lacks a validator, then that stored response is
 *   identified for update."
 *
 * Strata keeps one response per variant, so the question is whether that one is selected. A 304
 * with no validator at all updates it even when it has validators: origins commonly omit them on
 * a 304 to a request that named them (If-None-Match or If-Modified-Since from this entry), and
 * the request itself tied the answer to the stored response.
 */
export function selectedForUpdate(stored: Validators, response: Validators): boolean {
  const etag = response.etag;
  if (etag !== undefined) {
    // A strong entity tag identifies exactly one representation: the stored one must carry the
    // same strong tag; a stored weak tag, or none, is not "the same strong validator".
    if (!isWeakEtag(etag)) return stored.etag === etag;
    // A weak tag corresponds to a stored tag with the same opaque-tag (weak comparison, §8.8.3.2).
    return stored.etag !== undefined && stored.etag.replace(/^W\//, '') === etag.slice(2);
  }
  if (response.lastModified !== undefined) {
    // Last-Modified alone: a stored entity tag is checked by the etag branch when the origin sends
    // one; here the dates must correspond.
    return stored.lastModified === undefined || stored.lastModified === response.lastModified;
  }
  return true;
}
