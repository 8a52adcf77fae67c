/**
 * The shape the code keeps (issue 10): no import cycle in src/, the miss path a short story in
 * pipeline.ts, phases that never import one another, and short functions in src/edge. Read
 * from the source text: relative imports, and functions by their indentation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(import.meta.dirname, '../../..');
const src = path.join(root, 'src');

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) files.push(...sourceFiles(full));
    else if (name.endsWith('.ts')) files.push(full);
  }
  return files.sort();
}

/** Relative imports and re-exports of a file, resolved to absolute paths (type-only ones too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms))
    found.push(path.resolve(path.dirname(file), match[1]!));
  return found;
}

/** Every cycle, each once, as a list of paths relative to src/. */
function cycles(files: string[]): string[][] {
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next)).map((f) => path.relative(src, f));
        const key = [...cycle].sort().join(' ');
        if (!found.has(key)) found.set(key, cycle);
      } else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (state.get(file) === undefined) visit(file);
  return [...found.values()];
}

/**
 * Known cycles in src/cache, being removed with the store's narrowing (issue 10, store part);
 * delete each line as its cycle goes.
 */
/** Cycles tolerated for now (none: the last ones in src/cache were removed). */
const KNOWN_CYCLES = new Set<string>();

/** Functions and methods longer than `max` lines: a declaration line, to its closing brace at the same indent. */
function longFunctions(file: string, max: number): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const long: string[] = [];
  const start =
    /^(\s*)(?:export\s+)?(?:async\s+)?(?:function\s*\*?\s*[\w$]+|(?:static\s+)?(?:async\s+)?(?:get\s+|set\s+)?#?[\w$]+\s*(?:<[^>]*>)?\s*\(|(?:readonly\s+)?[\w$]+\s*=\s*(?:async\s+)?\()/;
  for (let i = 0; i < lines.length; i++) {
    const match = start.exec(lines[i]!);
    if (match === null || /^\s*(?:if|for|while|switch|return|catch)\b/.test(lines[i]!)) continue;
    const indent = match[1]!;
    // the body ends at the first line closing at the declaration's indent
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j]!;
      if (line.startsWith(`${indent}}`) || line.startsWith(`${indent});`)) {
        if (j - i + 1 > max) long.push(`${path.relative(src, file)}:${i + 1} (${j - i + 1} lines)`);
        break;
      }
      // a multi-line signature closes its parameter list at the declaration's indent
      if (line.startsWith(`${indent})`)) continue;
      if (line.trim() !== '' && !line.startsWith(`${indent} `) && !line.startsWith(`${indent}\t`)) break;
    }
  }
  return long;
}

describe('the shape of the source', () => {
  const files = sourceFiles(src);

  it('has no import cycle in src/ beyond the known ones', () => {
    const unknown = cycles(files)
      .filter((cycle) => !KNOWN_CYCLES.has([...cycle].sort().join(' ')))
      .map((cycle) => cycle.join(' → '));
    assert.deepEqual(unknown, []);
  });

  it('keeps pipeline.ts at 200 lines at most', () => {
    const lines = readFileSync(path.join(src, 'edge/pipeline.ts'), 'utf8').trimEnd().split('\n');
    assert.ok(lines.length <= 200, `pipeline.ts has ${lines.length} lines`);
  });

  it('has no phase importing another phase', () => {
    const phases = path.join(src, 'edge/phases');
    const crossing: string[] = [];
    for (const file of sourceFiles(phases))
      for (const imported of importsOf(file))
        if (path.dirname(imported) === phases)
          crossing.push(`${path.basename(file)} → ${path.basename(imported)}`);
    assert.deepEqual(crossing, []);
  });

  it('has no function over 60 lines in src/edge', () => {
    const long = sourceFiles(path.join(src, 'edge')).flatMap((file) => longFunctions(file, 60));
    assert.deepEqual(long, []);
  });

  it('finds cycles and long functions when there are some (the checks check)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-cycle-'));
    try {
      writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b.ts';\nexport const a = b;\n");
      writeFileSync(
        path.join(dir, 'b.ts'),
        "import type { a } from './a.ts';\nexport const b = 1 as typeof a;\n",
      );
      assert.equal(cycles([path.join(dir, 'a.ts'), path.join(dir, 'b.ts')]).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const sample = sourceFiles(path.join(src, 'cache')).flatMap((file) => longFunctions(file, 5));
    assert.ok(sample.length > 0);
  });
});
