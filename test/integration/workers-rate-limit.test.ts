import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { type Served, serve } from './workers-support.ts';

const PATH = `/assets/${'k'.repeat(70)}/${'v'.repeat(30)}/bundle.js`;
const RATE = 20;
const BURST = 10;

describe('rate limit across 2 workers', () => {
  let origin: TestOrigin;
  let dir: string;
  let node: Served;

  before(async () => {
    origin = await startOrigin({ [PATH]: respond(200, { 'cache-control': 'max-age=600' }, 'bundle') });
    dir = mkdtempSync(join(tmpdir(), 'strata-rate-workers-'));
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        origins: [{ name: 'o', url: origin.url }],
        sites: [
          {
            name: 's',
            hosts: ['*'],
            origins: ['o'],
            security: { rateLimit: { requestsPerSecond: RATE, burst: BURST } },
          },
        ],
      }),
    );
    node = await serve(origin.url, dir, file);
  });
  after(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds one client spread over both workers to the node-wide rate, and leaves another client alone', async () => {
    // Many connections, so the primary spreads them over both workers.
    const agents = Array.from(
      { length: 8 },
      () => new Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.0.2' }),
    );
    const started = Date.now();
    let served = 0;
    let refused = 0;
    // ~200 requests/s for 1.5 s (bounded: 300 requests, 10 s).
    for (let round = 0; round < 38 && Date.now() - started < 10_000; round++) {
      const results = await Promise.all(agents.map((agent) => request(`${node.url}${PATH}`, { agent })));
      for (const result of results) {
        if (result.status === 200) served++;
        else if (result.status === 429) refused++;
      }
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const seconds = (Date.now() - started) / 1000;
    for (const agent of agents) agent.destroy();
    const allowed = BURST + RATE * seconds;
    // One report interval (100 ms) of overshoot per worker at most.
    assert.ok(
      served <= allowed + 2 * (RATE * 0.1 + BURST / 2) + 2,
      `served ${served} in ${seconds.toFixed(2)} s; allowed about ${allowed.toFixed(0)}`,
    );
    assert.ok(served >= RATE * seconds * 0.6, `served ${served}: the client still gets its rate`);
    assert.ok(refused > 0);
    const other = await request(`${node.url}${PATH}`, { localAddress: '127.0.0.3' });
    assert.equal(other.status, 200, 'another client is unaffected');
  });
});
