#!/usr/bin/env node
/**
 * The `strata` command's entry point (package.json bin, npm start, the Docker image). Plain
 * JavaScript, so that Node needs no TypeScript stripping to run it: it turns Node's module compile
 * cache on (the stripped source and V8's code cache of every module, in NODE_COMPILE_CACHE or else
 * os.tmpdir()/node-compile-cache; NODE_DISABLE_COMPILE_CACHE=1 turns it off), then runs
 * cli/strata.ts. From the second start on no module is stripped again, so Node's TypeScript
 * stripper (amaro) is never loaded: about 16 MiB less resident memory per process at start
 * (docs/performance.md, "Memory at start"). Worker processes inherit the cache through the
 * environment. `node cli/strata.ts` still works, without the cache.
 */
import module from 'node:module';

// The rest is TypeScript run by Node's type stripping (Node 24). An older Node, or one started
// with --no-experimental-strip-types, would fail on the first import with "Unknown file
// extension .ts", which says nothing about the fix.
if (!process.features.typescript) {
  process.stderr.write(
    `strata: needs Node.js 24 with type stripping; this is Node.js ${process.version}` +
      `${process.versions.node.startsWith('24.') ? ' started without it (--no-experimental-strip-types)' : ''}.` +
      ' Run it as `npm run -s strata -- ARGS` (npm puts the pinned Node 24 first on the PATH) or put Node 24 first on your PATH.\n',
  );
  process.exit(1);
}

const cache = module.enableCompileCache?.();
// Worker processes (node:cluster) start from worker-main.ts: the variable turns the cache on there
// before their first module is read.
if (cache?.directory && process.env.NODE_COMPILE_CACHE === undefined) {
  process.env.NODE_COMPILE_CACHE = cache.directory;
}
// V8's young generation and optimizing compilers are held while the modules load (serve releases
// them once listening: src/start-flags.ts).
const { holdWhileStarting } = await import('../src/start-flags.ts');
holdWhileStarting();
await import('./strata.ts');
