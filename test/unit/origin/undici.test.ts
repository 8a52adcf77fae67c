/**
 * The node loads the parts of undici it uses (src/origin/undici.ts), not the package's index,
 * which loads all of undici: 110 ms and 28 MiB on a node's first origin request. Checked in a
 * process of its own, where nothing else loaded undici: a pool made from the parts answers a
 * request with the request API the index would have added, and undici's index was never loaded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MODULE = fileURLToPath(new URL('../../../src/origin/undici.ts', import.meta.url));
const PATH = `/catalogue/${'winter-range/'.repeat(8)}boots.json?size=42&colour=brown&ref=newsletter-december`;

describe('undici parts', () => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`seen ${req.url}`);
  });
  let origin = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("answers a pool's and an agent's requests without loading undici's index", async () => {
    const script = `
      import { createRequire } from 'node:module';
      import { loadUndici } from ${JSON.stringify(MODULE)};
      const { Pool, Agent } = await loadUndici();
      const pool = new Pool(${JSON.stringify(origin)});
      const viaPool = await pool.request({ path: ${JSON.stringify(PATH)}, method: 'GET' });
      const agent = new Agent();
      const viaAgent = await agent.request({ origin: ${JSON.stringify(origin)}, path: '/health', method: 'GET' });
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/undici/'));
      console.log(JSON.stringify({
        pool: [viaPool.statusCode, await viaPool.body.text()],
        agent: [viaAgent.statusCode, await viaAgent.body.text()],
        index: loaded.some((f) => f.endsWith('/undici/index.js')),
        modules: loaded.length,
      }));
      await pool.close();
      await agent.close();
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 30_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(seen.pool, [200, `seen ${PATH}`]);
    assert.deepEqual(seen.agent, [200, 'seen /health']);
    assert.equal(seen.index, false, "undici's index was loaded");
    assert.ok(seen.modules > 10, `undici's parts were loaded (${seen.modules} modules)`);
  });
});
