import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { configReferenceTable } from '../../../src/config/reference.ts';

it('docs/configuration.md lists every configuration key exactly as the schema defines it', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
  const match = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(doc);
  assert.ok(match, 'docs/configuration.md has the generated reference block');
  assert.equal(match[1], configReferenceTable(), 'regenerate the block from src/config/reference.ts');
});
