/**
 * The purge routes of the admin listener.
 *
 * POST /purge: `{"urls", "prefixes", "tags", "hosts", "all", "soft"}` → 200 `{"purged", "soft",
 * "sequence"}` (with `"warning"` when nothing matched) once the purge is durable and applied on
 * this node; 400 with the reason when the body is not a valid purge.
 *
 * The forms operators know from other caches, on the same (authenticated) listener:
 *  - `PURGE <url>`: the method with an absolute URL as its target (`curl -X PURGE --request-target URL ADMIN`),
 *    or a path with the site's name in Host (`curl -X PURGE -H 'Host: example.com' ADMIN/a.css`):
 *    purges that URL, both schemes;
 *  - `Surrogate-Key: k1 k2` (space separated): purges those tags — on `PURGE` instead of the URL,
 *    on `POST /purge` in addition to the body's (which may then be empty);
 *  - `Fastly-Soft-Purge: 1`: the purge is soft.
 *
 * Progress: a call that sends `Accept: application/x-ndjson` is answered 200 as soon as the purge
 * is logged and flushed (durable), with one JSON object per line: `{"progress": {"visited",
 * "total", "purged", "elapsedMs"}}` as the purge runs (the first after its first write
 * transaction, then at most every 250 ms), and last the answer it would have had without the
 * header (or `{"error"}` if the purge failed after the stream began). Without the header the
 * answer is unchanged: one JSON object once the purge is done. A purge the store cannot write
 * (a full disk) is answered 503 `{"error", "code"}` when no line was sent yet.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EdgeError, isEdgeError } from '../errors.ts';
import { canonicalAuthority } from '../http/request-target.ts';
import {
  type Forwarded,
  newPurgeProblem,
  type ParsedPurge,
  type PurgeCommand,
  parsePurgeBody,
  parsePurgeText,
} from '../purge/command.ts';
import type { PurgeProgress, PurgeService } from '../purge/service.ts';
import { json, readBody } from './respond.ts';

/** Largest purge body accepted (10,000 URLs of about 100 bytes). */
const MAX_BODY = 1024 * 1024;
/** Least time between two progress lines. */
const PROGRESS_EVERY_MS = 250;
const NDJSON = 'application/x-ndjson';

function wantsProgress(req: IncomingMessage): boolean {
  return String(req.headers.accept ?? '')
    .toLowerCase()
    .split(',')
    .some((type) => type.trim().split(';')[0] === NDJSON);
}

/** A purge the store could not write (a full disk): a state to wait out, said as such. */
function refusedByStore(error: unknown): error is EdgeError {
  return isEdgeError(error) && error.code === 'EDGE_ERR_STORE_WRITE';
}

/** Runs the purge and answers: one JSON object, or progress lines then the answer (NDJSON). */
async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  purge: PurgeService,
  command: PurgeCommand,
  forwarded?: Forwarded,
): Promise<void> {
  // NDJSON: the 200 goes with the first progress line, which the purge reports once it is
  // logged and flushed, so a 200 is never seen for a purge a crash could still lose.
  const progress = wantsProgress(req);
  const begin = () => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': NDJSON, 'cache-control': 'no-store' });
  };
  let last = Number.NEGATIVE_INFINITY;
  const onProgress = (state: PurgeProgress) => {
    const now = performance.now();
    if (now - last < PROGRESS_EVERY_MS) return;
    last = now;
    begin();
    res.write(`${JSON.stringify({ progress: { ...state, elapsedMs: Math.round(state.elapsedMs) } })}\n`);
  };
  let result: unknown;
  try {
    result = await purge.purge(command, forwarded, progress ? onProgress : undefined);
  } catch (error) {
    if (!res.headersSent) {
      if (refusedByStore(error)) return json(res, 503, { error: error.message, code: error.code });
      throw error;
    }
    // The last line written first; then the error goes on to be logged once, by the listener.
    const refused = refusedByStore(error);
    const message = refused ? error.message : `purge failed: ${(error as Error).message}`;
    const line = `${JSON.stringify({ error: message, ...(refused ? { code: error.code } : {}) })}\n`;
    await new Promise<void>((resolve) => res.end(line, resolve));
    throw error;
  }
  if (!progress) return json(res, 200, result);
  begin();
  res.end(`${JSON.stringify(result)}\n`);
}

/** The tags of a `Surrogate-Key` header (space separated, as origins send them). */
function surrogateKeys(req: IncomingMessage): string[] {
  const value = req.headers['surrogate-key'];
  return (Array.isArray(value) ? value.join(' ') : (value ?? '')).split(/\s+/).filter(Boolean);
}

/** `Fastly-Soft-Purge: 1` asks for a soft purge. */
function softHeader(req: IncomingMessage): boolean {
  return String(req.headers['fastly-soft-purge'] ?? '').trim() === '1';
}

/** The body's command with what the compatibility headers add (tags, soft). */
function withHeaders(req: IncomingMessage, text: string): ParsedPurge {
  const tags = surrogateKeys(req);
  const soft = softHeader(req);
  // No body: the headers alone are the purge (an empty one without Surrogate-Key, said so).
  if (text.trim() === '') return parsePurgeBody({ tags, soft });
  return parsePurgeText(text, tags.length > 0 || soft ? { tags, soft } : undefined);
}

export async function handlePurge(
  req: IncomingMessage,
  res: ServerResponse,
  purge: PurgeService,
): Promise<void> {
  const text = await readBody(req, MAX_BODY);
  if (text === undefined) return json(res, 413, { error: `purge body larger than ${MAX_BODY} bytes` });
  const parsed = withHeaders(req, text);
  if (!parsed.ok) return json(res, 400, { error: parsed.reason });
  // A peer's forward was checked where it was asked for; a new purge names real hosts.
  const problem = parsed.forwarded === undefined ? newPurgeProblem(parsed.command) : undefined;
  if (problem !== undefined) return json(res, 400, { error: problem });
  return answer(req, res, purge, parsed.command, parsed.forwarded);
}

/**
 * The URL a `PURGE` request names: its absolute target, or Host + its path. A Host naming the
 * admin listener itself (`curl -X PURGE http://127.0.0.1:9091/a.css`) names no site: undefined.
 */
function purgedUrl(req: IncomingMessage): string | undefined {
  const target = req.url ?? '/';
  if (/^https?:\/\//i.test(target)) return target;
  const host = req.headers.host;
  if (host === undefined || !target.startsWith('/')) return undefined;
  const { localAddress, localPort } = req.socket;
  const own = localAddress?.includes(':') ? `[${localAddress}]:${localPort}` : `${localAddress}:${localPort}`;
  if (host.toLowerCase() === own || host.toLowerCase() === `localhost:${localPort}`) return undefined;
  return `http://${host}${target}`;
}

/** `PURGE <url>` (or, with Surrogate-Key, `PURGE` of those tags); answered like POST /purge. */
export async function handlePurgeMethod(
  req: IncomingMessage,
  res: ServerResponse,
  purge: PurgeService,
): Promise<void> {
  // A PURGE carries no body; whatever it sent is read and ignored (bounded).
  if ((await readBody(req, MAX_BODY)) === undefined)
    return json(res, 413, { error: `purge body larger than ${MAX_BODY} bytes` });
  const tags = surrogateKeys(req);
  // A Host that is no host[:port] would move the path into a fragment, a query or another
  // path (`blog.test#` + `/a.css` reads as http://blog.test/): another URL purged than named.
  const host = req.headers.host;
  if (tags.length === 0 && host !== undefined && canonicalAuthority(host, 'http') === undefined)
    return json(res, 400, { error: `Host "${host}" names no host[:port] to purge the path on` });
  const url = purgedUrl(req);
  if (tags.length === 0 && url === undefined)
    return json(res, 400, {
      error:
        'PURGE needs the URL to purge: an absolute URL as the target (curl -X PURGE --request-target URL ADMIN), a path with the site in Host, or Surrogate-Key',
    });
  const parsed =
    tags.length > 0
      ? parsePurgeBody({ tags, soft: softHeader(req) })
      : parsePurgeBody({ urls: [url], soft: softHeader(req) });
  if (!parsed.ok) return json(res, 400, { error: parsed.reason });
  const problem = newPurgeProblem(parsed.command);
  if (problem !== undefined) return json(res, 400, { error: problem });
  return answer(req, res, purge, parsed.command);
}
