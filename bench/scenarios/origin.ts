/** The bench origin every scenario starts first and stops last, on the generator core. */
import path from 'node:path';
import { PINNING } from '../lib/processes.ts';
import type { BenchContext } from '../lib/scenario.ts';
import { startTarget, type Target } from '../lib/targets.ts';

export async function withOrigin(
  ctx: BenchContext,
  options: { delayMs: number },
  body: (origin: Target) => Promise<void>,
): Promise<void> {
  const origin = await startTarget('origin', {
    dir: path.join(ctx.workDir, 'origin'),
    cores: PINNING.generator,
    delayMs: options.delayMs,
  });
  try {
    await body(origin);
  } finally {
    await origin.stop();
  }
}
