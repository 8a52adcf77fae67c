/** Entry point of a worker process (node:cluster runs this file; see primary.ts). */
import { flushCompileCache } from 'node:module';
import { holdWhileStarting, releaseAfterStart } from '../start-flags.ts';

// V8's young generation and optimizing compilers are held while the worker starts (start-flags.ts).
holdWhileStarting();
try {
  const { runWorker } = await import('./worker.ts');
  await runWorker();
  releaseAfterStart();
  flushCompileCache(); // the modules read so far, when cli/strata.js turned the cache on
} catch (error) {
  process.stderr.write(`strata: worker ${process.pid} failed to start: ${(error as Error).message}\n`);
  process.exit(1);
}
