/**
 * A response head written from prepared text: the fixed fields of a stored response rendered
 * once as `Name: value\r\n` lines (checked once with node:http's own validators), and per
 * response only the few fields that change (Age, Cache-Status, …), the connection fields and
 * Content-Length. `writeHead` validates and renders every field of every response; on a small
 * hit that work is a large part of what the node adds to the runtime's own cost.
 *
 * Only for a plain HTTP/1.1 `ServerResponse` whose head is still to be written, with a body
 * (anything else — the last request allowed on a connection, `Expect`, HEAD, fields set with
 * setHeader — is left to writeHead, which knows those cases). The connection fields are those
 * node:http would write (lib/_http_outgoing.js, _storeHeader): `Connection: keep-alive` and
 * `Keep-Alive: timeout=N` on a connection kept alive; `Connection: close`, and the connection
 * closed after the response, when the request asked for that (HTTP/1.0, `Connection: close`).
 */
import { type ServerResponse, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';

/** The fields of a list, rendered, and whether one of them is Date. */
interface Block {
  text: string;
  date: boolean;
}

/** Fields node:http must see to frame the response or keep the connection: never prepared. */
const FRAMING = new Set([
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'trailer',
  'expect',
  'content-disposition',
]);

/** RFC 9110 §5.5 field-value characters, as node:http checks them (no CR, LF or NUL). */
const INVALID = /[^\t\x20-\x7e\x80-\xff]/;

const blocks = new WeakMap<readonly string[], Block | null>();

/** The rendered block of a flat [name, value, …] list, or null when it cannot be prepared. */
function blockOf(list: readonly string[]): Block | null {
  let block = blocks.get(list);
  if (block !== undefined) return block;
  block = render(list);
  blocks.set(list, block);
  return block;
}

function render(list: readonly string[]): Block | null {
  let text = '';
  let date = false;
  try {
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i]!;
      const value = list[i + 1]!;
      validateHeaderName(name);
      validateHeaderValue(name, value);
      const lower = name.toLowerCase();
      if (FRAMING.has(lower)) return null;
      if (lower === 'date') date = true;
      text += `${name}: ${value}\r\n`;
    }
  } catch {
    return null;
  }
  return { text, date };
}

/** The response fields node:http keeps on the object (internal, stable across Node 24). */
interface ResponseState {
  _header: string | null;
  _headerSent: boolean;
  _hasBody: boolean;
  _removedConnection: boolean;
  _keepAliveTimeout: number;
  _defaultKeepAlive: boolean;
  _last: boolean;
  _maxRequestsPerSocket: number;
  _contentLength: number | null;
  _expect_continue: boolean;
  useChunkedEncodingByDefault: boolean;
  maxRequestsOnConnectionReached?: boolean;
}

let outHeaders: symbol | undefined;

/** Whether writeHead would write what this module writes: see the module comment. */
function eligible(res: ServerResponse): boolean {
  const state = res as unknown as ResponseState;
  if (state._header !== null || !state._hasBody) return false;
  if (state._removedConnection || state._expect_continue || !state.useChunkedEncodingByDefault) return false;
  if (state.maxRequestsOnConnectionReached === true) return false;
  outHeaders ??= Object.getOwnPropertySymbols(res).find((s) => s.description === 'kOutHeaders');
  if (outHeaders === undefined) return false;
  return (res as unknown as Record<symbol, unknown>)[outHeaders] == null;
}

let dateSecond = -1;
let dateText = '';

/** The Date field value, as node:http makes it (one rendering per second). */
function utcDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/**
 * Writes `status`, the fields of `list` (prepared once per list), the `extra` fields of this
 * response ([name, value, …]: names the caller's own, values checked here) and `body` as the
 * whole response. False, with nothing written, when the response, the list or a value does not
 * qualify: the caller then uses writeHead as usual.
 */
export function endPrepared(
  res: ServerResponse,
  status: number,
  list: readonly string[],
  extra: readonly string[],
  body: Buffer,
): boolean {
  if (!eligible(res)) return false;
  const block = blockOf(list);
  if (block === null) return false;
  let fields = '';
  for (let i = 0; i < extra.length; i += 2) {
    const value = extra[i + 1]!;
    if (INVALID.test(value)) return false;
    fields += `${extra[i]}: ${value}\r\n`;
  }
  const state = res as unknown as ResponseState;
  const reason = STATUS_CODES[status] ?? 'unknown';
  let head = `HTTP/1.1 ${status} ${reason}\r\n${block.text}${fields}`;
  if (!block.date) head += `Date: ${utcDate()}\r\n`;
  if (res.shouldKeepAlive) {
    head += 'Connection: keep-alive\r\n';
    if (state._keepAliveTimeout && state._defaultKeepAlive) {
      const max = ~~state._maxRequestsPerSocket > 0 ? `, max=${state._maxRequestsPerSocket}` : '';
      head += `Keep-Alive: timeout=${Math.floor(state._keepAliveTimeout / 1000)}${max}\r\n`;
    }
  } else {
    // As _storeHeader: the server closes the connection once this response is finished.
    state._last = true;
    head += 'Connection: close\r\n';
  }
  head += `Content-Length: ${body.length}\r\n\r\n`;
  res.statusCode = status;
  res.statusMessage = reason;
  state._contentLength = body.length;
  state._header = head;
  state._headerSent = false;
  res.end(body);
  return true;
}
