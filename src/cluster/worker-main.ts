/** Entry point of a worker process (node:cluster runs this file; see primary.ts). */
import { flushCompileCache } from 'node:module';
import { holdYoungGeneration, releaseYoungGeneration } from '../heap.ts';

// The young generation stays small while the worker's modules load (src/heap.ts).
holdYoungGeneration();
try {
  const { runWorker } = await import('./worker.ts');
  await runWorker();
  releaseYoungGeneration();
  flushCompileCache(); // the modules read so far, when cli/strata.js turned the cache on
} catch (error) {
  process.stderr.write(`strata: worker ${process.pid} failed to start: ${(error as Error).message}\n`);
  process.exit(1);
}
