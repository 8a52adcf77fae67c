/**
 * The docs cannot drift: every fenced block marked ```sh runnable in README.md and docs/*.md is
 * run, in page order, against a live node — the demo origin of `npm start` on 127.0.0.1 port 0,
 * a real LMDB directory in a temp folder, the admin listener with the token the docs use — with
 * 127.0.0.1:8080 and 127.0.0.1:9091 replaced by the node's client and admin ports. The blocks of
 * one page share one bash (`set -euo pipefail`), so a page can set a variable once; `strata` is
 * the alias README gives (`npm run -s strata --`). A block fails the test when a command in it
 * fails (curl -f, grep, a strata exit status).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import {
  createEdgeNode,
  type DemoOrigin,
  type EdgeNode,
  startDemoOrigin,
  validateConfig,
} from '../../src/index.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TOKEN = 'change-me-to-16-characters-or-more';
const BLOCK_LIMIT_MS = 60_000;

interface Block {
  page: string;
  line: number;
  code: string;
}

/** The runnable blocks of a page, with the line each starts on. */
function runnableBlocks(page: string): Block[] {
  const text = readFileSync(page, 'utf8');
  const blocks: Block[] = [];
  for (const match of text.matchAll(/^```sh runnable\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, match.index).split('\n').length;
    blocks.push({ page: relative(ROOT, page), line, code: match[1]! });
  }
  return blocks;
}

const pages = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(ROOT, 'docs', f)),
];

function runPage(
  blocks: Block[],
  client: string,
  admin: string,
): Promise<{ code: number | null; output: string }> {
  const body = blocks
    .map((block) => {
      const code = block.code
        .replaceAll('127.0.0.1:8080', client)
        .replaceAll('127.0.0.1%3A8080', encodeURIComponent(client))
        .replaceAll('127.0.0.1:9091', admin);
      return `echo "--- ${block.page}:${block.line}" >&2\n${code}`;
    })
    .join('\n');
  const script = `set -euo pipefail\nshopt -s expand_aliases\nalias strata='npm run -s strata --'\n${body}\necho "--- done" >&2\n`;
  // The pinned Node first on the PATH, as npm scripts have it.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
  };
  delete env.STRATA_ADMIN_TOKEN;
  delete env.STRATA_CONFIG;
  return new Promise((resolvePromise) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_LIMIT_MS * blocks.length);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

describe('runnable docs', () => {
  let demo: DemoOrigin;
  let node: EdgeNode;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-docs-'));
    demo = await startDemoOrigin();
    const result = validateConfig({
      listeners: [{ listen: '127.0.0.1:0' }],
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      origins: [{ name: 'origin', url: demo.url }],
      sites: [{ name: 'default', hosts: ['*'], origins: ['origin'] }],
      cache: { dir: join(dir, 'cache') },
      logging: { level: 'silent' },
    });
    assert.ok('config' in result);
    node = await createEdgeNode({ config: result.config, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await node.close();
    await demo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('marks the quick start and the purge and inspect examples runnable', () => {
    const marked = new Set(pages.flatMap(runnableBlocks).map((b) => b.page));
    for (const page of ['README.md', 'docs/purge.md', 'docs/admin-api.md']) assert.ok(marked.has(page), page);
  });

  for (const page of pages) {
    const blocks = runnableBlocks(page);
    if (blocks.length === 0) continue;
    it(`runs the examples of ${relative(ROOT, page)}`, async () => {
      const { code, output } = await runPage(blocks, node.addresses[0]!, node.adminAddress!);
      const ran: string[] = output.match(/^--- (.+)$/gm) ?? [];
      assert.equal(code, 0, `failed in the block at ${ran.at(-1)?.slice(4)}:\n${output}`);
      assert.ok(ran.includes('--- done'));
    });
  }
});
