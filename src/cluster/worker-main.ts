/** Entry point of a worker process (node:cluster runs this file; see primary.ts). */
import { runWorker } from './worker.ts';

try {
  await runWorker();
} catch (error) {
  process.stderr.write(`strata: worker ${process.pid} failed to start: ${(error as Error).message}\n`);
  process.exit(1);
}
