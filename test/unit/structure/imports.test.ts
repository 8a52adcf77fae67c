/**
 * The shape of src/ that the compiler does not check: no import cycle anywhere (type-only
 * imports included: a cycle of types still ties two modules together), and no file outside
 * src/cache reaching into the store's LMDB databases.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../../src');

function sources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sources(path));
    else if (entry.name.endsWith('.ts')) found.push(path);
  }
  return found;
}

/** Relative module specifiers of every import and re-export statement (static ones). */
const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;

function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const match of text.matchAll(IMPORT)) targets.push(resolve(dirname(file), match[1]!));
    graph.set(file, targets);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the list of files around it. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const seen = state.get(next);
      if (seen === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (seen === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

describe('the module structure of src/', () => {
  const files = sources(SRC);

  it('finds the import statements it walks (the regex is not silently matching nothing)', () => {
    const graph = importGraph(files);
    const store = graph.get(join(SRC, 'cache/store.ts')) ?? [];
    assert.ok(store.includes(join(SRC, 'cache/body-writer.ts')));
    assert.ok(store.includes(join(SRC, 'errors.ts')));
    assert.deepEqual(
      findCycles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
      [['a', 'b', 'c', 'a']],
    );
  });

  it('has no import cycle, type-only imports included', () => {
    const cycles = findCycles(importGraph(files)).map((cycle) =>
      cycle.map((file) => relative(SRC, file)).join(' → '),
    );
    assert.deepEqual(cycles, []);
  });

  it('has no file outside src/cache touching an LMDB database of the store', () => {
    const reaching =
      /\.(entries|chunks|variants|meta|tags|purges|access|env)\.(get|put|remove|getRange|getKeys|getValues|getBinary|transaction|openDB|resetReadTxn|flushed)\b|\bopenDB\b|from 'lmdb'/;
    const offenders: string[] = [];
    for (const file of files) {
      if (file.startsWith(`${join(SRC, 'cache')}/`)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (reaching.test(line)) offenders.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offenders, []);
  });
});
