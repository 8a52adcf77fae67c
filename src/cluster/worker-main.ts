/** Entry point of a worker process (node:cluster runs this file; see primary.ts). */
import { flushCompileCache } from 'node:module';
import { runWorker } from './worker.ts';

try {
  await runWorker();
  flushCompileCache(); // the modules read so far, when cli/strata.js turned the cache on
} catch (error) {
  process.stderr.write(`strata: worker ${process.pid} failed to start: ${(error as Error).message}\n`);
  process.exit(1);
}
