/**
 * No command reaches the registry by accident: nothing installed in node_modules/.bin shadows the
 * user's npm or npx (a dependency that brings its own npm puts an old npx first on the PATH of
 * every npm script), and the docs run only the project's own CLI, never `npx strata` (outside
 * the checkout that name resolves to an unrelated registry package).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../../..');

function docs(): string[] {
  const dir = join(ROOT, 'docs');
  return [
    'README.md',
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs', f)),
  ];
}

describe('registry safety', () => {
  it('node_modules/.bin holds no npm or npx', () => {
    const bin = join(ROOT, 'node_modules', '.bin');
    const shadowing = ['npm', 'npx', 'npm.cmd', 'npx.cmd'].filter((name) => existsSync(join(bin, name)));
    assert.deepEqual(
      shadowing,
      [],
      `node_modules/.bin shadows ${shadowing.join(', ')}: reinstall node_modules from the current package-lock.json`,
    );
  });

  it('the lock installs no npm package with a bin (http-cache-tests gets the stub)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { bin?: Record<string, string>; link?: boolean; resolved?: string }>;
    };
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.bin ?? {}))
        assert.ok(name !== 'npm' && name !== 'npx', `${path} installs a ${name} bin`);
    }
    assert.equal(lock.packages['node_modules/npm']?.resolved, 'conformance/npm-stub');
  });

  it('README and docs never run `npx strata`', () => {
    for (const file of docs()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      assert.ok(!/\bnpx\s+(?:--?\S+\s+)*strata\b/.test(text), `${file} runs npx strata`);
    }
  });
});
