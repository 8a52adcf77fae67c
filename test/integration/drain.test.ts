import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from '../helpers/http.ts';
import { startNode } from '../helpers/node.ts';
import { startOrigin } from '../helpers/origin.ts';
import { eventually } from './purge-support.ts';

describe('drain', () => {
  it('ends a drain that outlasts its deadline: open connections closed, origin requests still running ended', async () => {
    const origin = await startOrigin({ '/stuck': () => {} }); // never answers
    const edge = await startNode({
      origin: origin.url,
      config: { origins: [{ name: 'origin', url: origin.url, responseTimeout: 30_000 }] },
    });
    try {
      const path = `/stuck?${'q'.repeat(120)}`;
      const pending = request(`${edge.url}${path}`).catch((error: Error) => error);
      assert.ok(await eventually(() => origin.count() === 1, 3000), 'the request reached the origin');
      const started = performance.now();
      await edge.node.close({ drainMs: 300 });
      const took = performance.now() - started;
      assert.ok(took < 3000, `drain took ${Math.round(took)} ms`);
      const answer = await pending;
      assert.ok(
        answer instanceof Error || answer.status >= 500 || !answer.complete,
        'the client was not answered 200',
      );
      assert.equal(origin.count(), 1);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
