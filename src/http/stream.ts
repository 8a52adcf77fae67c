/**
 * Transport-neutral ends of a request. Closing after a refusal means, on HTTP/1.1, ending the
 * connection (`Connection: close`, done by the caller); on HTTP/2 only the stream ends: once
 * the response is sent, RST_STREAM NO_ERROR tells the client to stop sending its body
 * (RFC 9113 §8.1) while the connection's other streams go on.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Whether a request came as an HTTP/2 stream. Not `httpVersionMajor === 2` alone: node:http
 * parses an "HTTP/2.0" request line on an HTTP/1 connection as version 2 too (refused, 505).
 */
export function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && (req as IncomingMessage & { stream?: unknown }).stream !== undefined;
}

/** NGHTTP2_NO_ERROR (RFC 9113 §7): a literal, so node:http2 is loaded only with an HTTP/2 listener. */
const NO_ERROR = 0;

export function endStream(res: ServerResponse): void {
  const stream = (res as ServerResponse & { stream?: { closed: boolean; close(code: number): void } }).stream;
  if (stream === undefined || stream.closed) return;
  // After the response's last frame is handed over (end() queued it), the stream is reset.
  const reset = () => {
    if (!stream.closed) stream.close(NO_ERROR);
  };
  if (res.writableFinished) reset();
  else res.once('finish', reset);
}
