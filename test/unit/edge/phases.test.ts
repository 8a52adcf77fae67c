/**
 * docs/architecture.md lists the phases; src/edge/phases/ holds them. Each phase file is in the
 * list and each listed phase is a file, and every phase file opens with a doc comment saying
 * when it runs (`name: …`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(import.meta.dirname, '../../..');
const phasesDir = path.join(root, 'src/edge/phases');

function listedPhases(): string[] {
  const doc = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
  const begin = doc.indexOf('<!-- phases:begin -->');
  const end = doc.indexOf('<!-- phases:end -->');
  assert.ok(begin >= 0 && end > begin, 'docs/architecture.md has the phase list markers');
  return doc
    .slice(begin, end)
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| phase') && !line.startsWith('| ---'))
    .map((line) => line.split('|')[1]!.trim());
}

const phaseFiles = readdirSync(phasesDir)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => name.slice(0, -3));

describe('the phase chart', () => {
  it('lists exactly the phase files of src/edge/phases/', () => {
    assert.deepEqual([...listedPhases()].sort(), [...phaseFiles].sort());
  });

  it('has each phase file open with a doc comment naming it', () => {
    const undocumented = phaseFiles.filter((name) => {
      const text = readFileSync(path.join(phasesDir, `${name}.ts`), 'utf8');
      return !new RegExp(`^/\\*\\*\\n \\* ${name}( \\(the step\\))?:`).test(text);
    });
    assert.deepEqual(undocumented, []);
  });
});
