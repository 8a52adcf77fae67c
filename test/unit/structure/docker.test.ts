/**
 * The container image, checked without Docker (none on the machines that run the tests): the
 * Dockerfile's instructions as docs/docker.md describes them, .dockerignore, the COPY sources,
 * and the compose example in docs/docker.md (parsed, with its grace period and health-gated
 * start). `strata healthcheck` itself runs against a live node in test/integration/startup.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateConfig } from '../../../src/config/load.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

interface Instruction {
  name: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const found: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const name = match[1]!.toUpperCase();
    if (name === 'FROM') stage++;
    found.push({ name, args: match[2]!.trim(), stage });
  }
  return found;
}

const dockerfile = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const last = Math.max(...dockerfile.map((i) => i.stage));
const final = dockerfile.filter((i) => i.stage === last);
const one = (name: string): Instruction => {
  const all = final.filter((i) => i.name === name);
  assert.equal(all.length, 1, `one ${name} in the final stage`);
  return all[0]!;
};

describe('Dockerfile', () => {
  it('runs Node 24 as the node user under tini, serving STRATA_CONFIG, with no demo origin', () => {
    for (const from of dockerfile.filter((i) => i.name === 'FROM'))
      assert.match(from.args, /^node:24[-.\w]*/);
    assert.equal(one('USER').args, 'node');
    assert.deepEqual(JSON.parse(one('ENTRYPOINT').args), ['/usr/bin/tini', '--', 'node', 'cli/strata.js']);
    assert.ok(final.some((i) => i.name === 'RUN' && /apt-get install .*\btini\b/.test(i.args)));
    const cmd = JSON.parse(one('CMD').args) as string[];
    assert.deepEqual(cmd, ['serve']);
    const env = final
      .filter((i) => i.name === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /STRATA_CONFIG=\/etc\/strata\/strata\.yaml/);
    assert.match(env, /STRATA_CACHE_DIR=\/var\/cache\/strata/);
    for (const instruction of dockerfile) assert.doesNotMatch(instruction.args, /--origin|demo/i);
  });

  it('checks health on the configured admin listener, stops on SIGTERM, carries OCI labels', () => {
    const health = one('HEALTHCHECK').args;
    assert.match(health, /CMD \["node", "cli\/strata\.js", "healthcheck"\]$/);
    assert.doesNotMatch(health, /9091|127\.0\.0\.1/, 'the address comes from the configuration');
    assert.equal(one('STOPSIGNAL').args, 'SIGTERM');
    const labels = final
      .filter((i) => i.name === 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'licenses', 'version', 'revision'])
      assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`), key);
    assert.match(labels, /licenses="Apache-2\.0"/);
    const license = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string })
      .license;
    assert.equal(license, 'Apache-2.0');
  });

  it('copies sources that exist; .dockerignore keeps the checkout bulk out', () => {
    for (const copy of dockerfile.filter((i) => i.name === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
    }
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const entry of ['.git', 'node_modules', '.strata-cache', 'test', 'bench', 'conformance'])
      assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
  });
});

describe('docs/docker.md compose example', () => {
  const text = readFileSync(join(ROOT, 'docs', 'docker.md'), 'utf8');
  const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
    (m) => parse(m[1]!) as Record<string, unknown>,
  );

  it('parses, gives every Strata service 40 s to drain and starts the edge once the shield is healthy', () => {
    const compose = blocks.find((b) => b.services !== undefined) as {
      services: Record<string, { image: string; stop_grace_period?: string; depends_on?: unknown }>;
    };
    assert.ok(compose, 'a compose file');
    assert.deepEqual(Object.keys(compose.services).sort(), ['edge', 'origin', 'shield']);
    for (const name of ['edge', 'shield']) {
      const service = compose.services[name]!;
      assert.match(service.image, /^strata:/);
      assert.ok(
        Number.parseInt(service.stop_grace_period ?? '0', 10) > 30,
        `${name} grace above the 30 s drain`,
      );
    }
    assert.deepEqual(compose.services.edge!.depends_on, { shield: { condition: 'service_healthy' } });
  });

  it('holds node configurations that validate (the admin token comes from the environment)', () => {
    const configs = blocks.filter((b) => b.sites !== undefined);
    assert.equal(configs.length, 3, 'strata.yaml, shield.yaml, edge.yaml');
    for (const config of configs) {
      const admin = (config.admin ?? {}) as Record<string, unknown>;
      const result = validateConfig({
        ...config,
        admin: { ...admin, token: 'a-token-from-the-environment' },
      });
      assert.ok('config' in result, JSON.stringify('problems' in result ? result.problems : ''));
    }
  });
});
