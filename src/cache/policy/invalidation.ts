/** Invalidation after unsafe methods (RFC 9111 §4.4). */

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method);
}

/**
 * §4.4: "A cache MUST invalidate the target URI when it receives a non-error status code
 * in response to an unsafe request method ... A cache MAY invalidate other URIs when it
 * receives a non-error status code in response to an unsafe request method", and it
 * "MUST NOT invalidate a URI from a Location or Content-Location response header field if
 * the host part of that URI differs from the host part in the target URI".
 * Returns the absolute URLs to invalidate.
 */
export function urlsToInvalidate(
  method: string,
  status: number,
  targetUrl: string,
  location: string | undefined,
  contentLocation: string | undefined,
): string[] {
  if (!isUnsafeMethod(method) || status < 200 || status >= 400) return [];
  const target = new URL(targetUrl);
  const urls = [target.href];
  for (const reference of [location, contentLocation]) {
    if (!reference) continue;
    try {
      const url = new URL(reference, target);
      if (url.protocol === target.protocol && url.host === target.host && !urls.includes(url.href))
        urls.push(url.href);
    } catch {
      // an unparsable reference invalidates nothing
    }
  }
  return urls;
}
