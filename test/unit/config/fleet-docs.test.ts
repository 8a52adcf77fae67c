import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateConfig } from '../../../src/config/load.ts';
import { sharedConfigProblem } from '../../../src/fleet/config-put.ts';

const FLEET_SECTION = readFileSync(new URL('../../../docs/tiers.md', import.meta.url), 'utf8')
  .split('\n## Fleet')[1]!
  .split('\n## Not built yet')[0]!;
const SECRET = 'fleet-secret-for-the-docs-0123456789abcdef';

/** The YAML blocks of docs/tiers.md's Fleet section, with the secret placeholders filled in. */
function blocks(): Array<{ name: string; text: string }> {
  return [...FLEET_SECTION.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => ({
    name: /^# (\S+)/.exec(m[1]!)?.[1] ?? '?',
    text: m[1]!.replace(/\$\{the fleet secret[^}]*\}/g, SECRET),
  }));
}

describe('the fleet examples of docs/tiers.md', () => {
  it('are valid node configurations (shield, edge) and valid shared configurations (shields, edges)', () => {
    const all = blocks();
    assert.deepEqual(
      all.map((b) => b.name),
      ['shield-1.yaml', 'edge-fra-1.yaml', 'shields.yaml:', 'edges.yaml:'],
    );
    // The shields' shared part, over a shield's own file, is what a reload would accept.
    const shield = validateConfig({ ...parse(all[0]!.text), ...parse(all[2]!.text) });
    assert.ok('config' in shield, JSON.stringify('problems' in shield && shield.problems));
    assert.deepEqual(
      shield.config.sites.map((site) => site.name),
      ['shop', 'static'],
    );
    const found = [all[0]!, all[1]!, all[3]!];
    for (const block of found.slice(0, 2)) {
      const result = validateConfig(parse(block.text));
      assert.ok(
        'config' in result,
        `${block.name}: ${JSON.stringify('problems' in result && result.problems)}`,
      );
      assert.equal(result.config.fleet.nats.servers.length, 1);
    }
    assert.equal(sharedConfigProblem(found[2]!.text), undefined);
    // The edges' shared part, over an edge's own file, is what a reload would accept.
    const edge = parse(found[1]!.text);
    const result = validateConfig({ ...edge, ...parse(found[2]!.text) });
    assert.ok('config' in result, JSON.stringify('problems' in result && result.problems));
    assert.deepEqual(
      result.config.sites.map((site) => [site.name, site.selection]),
      [
        ['shop', 'hash'],
        ['static', 'hash'],
      ],
    );
  });

  it('leaves the bus off by default', () => {
    const result = validateConfig({});
    assert.ok('config' in result);
    assert.deepEqual(result.config.fleet.nats.servers, []);
    assert.equal(result.config.fleet.config, undefined);
    assert.equal(result.config.fleet.readiness.catchUpTimeout, 30_000);
  });

  it('names a bad fleet section with its path', () => {
    const result = validateConfig({
      fleet: { nats: { servers: ['http://x'], user: 'u' }, node: 'a.b', stream: 'has space' },
    });
    assert.ok('problems' in result);
    const paths = result.problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['fleet.nats.password', 'fleet.nats.servers[0]', 'fleet.node', 'fleet.stream']);
  });
});
