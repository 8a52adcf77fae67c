/**
 * hash: runs after receive, on every request it let through. Computes the primary cache key
 * and its LMDB key into the context; returns nothing.
 */
import { primaryKey, storageKey } from '../../cache/key.ts';
import type { RequestContext } from '../context.ts';

export function hash(ctx: RequestContext): void {
  ctx.key = primaryKey(ctx.scheme, ctx.host, ctx.path, ctx.site!.sortQuery);
  ctx.storage = storageKey(ctx.key);
}
