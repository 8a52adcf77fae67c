import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateConfig } from '../../../src/config/load.ts';

const RULES_SECTION = readFileSync(new URL('../../../docs/caching.md', import.meta.url), 'utf8').split(
  '\n## Rules\n',
)[1]!;

/** Every YAML example of docs/caching.md's Rules section, as a site's configuration. */
function examples(): Array<Record<string, unknown>> {
  const blocks = [...RULES_SECTION.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!));
  return blocks.map((block) => (Array.isArray(block.sites) ? block.sites[0] : block));
}

describe('the Rules examples of docs/caching.md', () => {
  it('are all valid configuration', () => {
    const sites = examples();
    assert.ok(sites.length >= 3);
    for (const site of sites) {
      const result = validateConfig({
        origins: [{ name: 'app', url: 'http://127.0.0.1:1' }],
        sites: [{ name: 'app', hosts: ['*'], origins: ['app'], ...site }],
      });
      assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
    }
  });
});
