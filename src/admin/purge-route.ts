/**
 * POST /purge: `{"urls", "prefixes", "tags", "all", "soft"}` → 200 `{"purged", "soft",
 * "sequence"}` once the purge is durable and applied on this node; 400 with the reason
 * when the body is not a valid purge.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parsePurgeText } from '../purge/command.ts';
import type { PurgeService } from '../purge/service.ts';
import { json, readBody } from './respond.ts';

/** Largest purge body accepted (10,000 URLs of about 100 bytes). */
const MAX_BODY = 1024 * 1024;

export async function handlePurge(
  req: IncomingMessage,
  res: ServerResponse,
  purge: PurgeService,
): Promise<void> {
  const text = await readBody(req, MAX_BODY);
  if (text === undefined) return json(res, 413, { error: `purge body larger than ${MAX_BODY} bytes` });
  const parsed = parsePurgeText(text);
  if (!parsed.ok) return json(res, 400, { error: parsed.reason });
  const result = await purge.purge(parsed.command, parsed.forwarded);
  return json(res, 200, result);
}
