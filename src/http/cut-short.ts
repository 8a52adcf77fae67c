/**
 * A response whose body cannot be completed once part of it went out (the origin's body failed,
 * a fill failed, a stored chunk is missing) must reach the client cut short, never as a clean
 * end (RFC 9112 §6.3, §9.6), or a client or a cache in front of the node keeps the truncated
 * body as the whole.
 *
 * With Content-Length or chunked framing the client sees the missing bytes or the missing last
 * chunk, and the connection is closed as usual (a FIN): a reset could discard earlier pipelined
 * responses still waiting in the kernel to be sent. A close-delimited body (no Content-Length,
 * not chunked: what node:http sends an HTTP/1.0 client when the length is not known) ends where
 * the connection ends, so a FIN would be its complete end: that connection is reset (a TCP RST)
 * instead. An HTTP/2 response is cut short by its stream's reset and is left to `destroy`.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The response fields node:http keeps on the object (internal, stable across Node 24; see prepared-head.ts). */
interface Framing {
  _header?: string | null;
  _contentLength?: number | null;
  chunkedEncoding?: boolean;
  _hasBody?: boolean;
}

/** Cuts `res` short after part of its body was sent: see the module comment. */
export function cutShort(res: ServerResponse, error: Error): void {
  if (!res.destroyed && closeDelimited(res)) reset(res.socket);
  res.destroy(error);
}

/**
 * Whether the head sent frames the body by the connection's end: an HTTP/1.x head (HTTP/2's
 * compatibility response has none of these fields) without Content-Length (lib/_http_outgoing.js
 * `_storeHeader` records one given in `_contentLength`, as prepared-head.ts does) and not chunked.
 */
export function closeDelimited(res: ServerResponse): boolean {
  const framing = res as unknown as Framing;
  if (typeof framing._header !== 'string' || framing.chunkedEncoding !== false) return false;
  // A head without a body (HEAD, 204, 304) is complete whatever follows: closed as usual.
  if (framing._hasBody === false) return false;
  return typeof framing._contentLength !== 'number';
}

/**
 * Closes the client connection with a TCP RST. A TLS connection's own handle cannot be reset
 * (resetAndDestroy throws): the TCP connection under it is (its missing close_notify is no
 * signal most clients heed; node's own TLS client reports it as a clean end).
 */
function reset(socket: Socket | null): void {
  if (socket === null || socket.destroyed) return;
  const tcp = 'encrypted' in socket ? (socket as Socket & { _parent?: Socket | null })._parent : socket;
  try {
    tcp?.resetAndDestroy();
  } catch {
    // Not a TCP handle: the destroy that follows closes it as before.
  }
}
