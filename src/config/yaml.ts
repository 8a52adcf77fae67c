/**
 * The yaml package, read on first use: a node configured from JSON or flags never loads it
 * (about 1 MiB at start, docs/performance.md "RSS at start"). Synchronous, as config loading is.
 */
import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');

let yaml: Yaml | undefined;

export function loadYaml(): Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml;
}
