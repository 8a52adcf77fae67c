import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { until } from '../helpers/wait.ts';

const CACHED = { 'cache-control': 'max-age=600', 'content-type': 'text/html' };
const PAGE = `/catalogue/${'autumn-collection-'.repeat(5)}index.html?ref=mail`;

/**
 * Requests carrying unkeyed header values (tracing, debug tokens, an X-Theme the origin may
 * reflect) still collapse: followers never read a scanned body as it streams, they wait for its
 * commit. Regression: such requests led no collapse at all, so a request sent right after the
 * first response ended raced its commit and went to the origin again.
 */
describe('collapsing requests whose responses are scanned for reflected values', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  const held: ServerResponse[] = [];

  before(async () => {
    origin = await startOrigin({
      [PAGE.split('?')[0]!]: (req, res) => {
        res.writeHead(200, CACHED);
        res.write('<html><body>');
        const theme = String(req.headers['x-theme'] ?? 'light');
        // Held until the test releases it, with the theme reflected (or not) at the end.
        (res as ServerResponse & { theme?: string }).theme = theme;
        held.push(res);
      },
    });
    edge = await startNode({ origin: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  function release(reflect: boolean): void {
    for (const res of held.splice(0)) {
      const theme = (res as ServerResponse & { theme?: string }).theme;
      res.end(reflect ? `<link href="/themes/${theme}.css"></body></html>` : '</body></html>');
    }
  }

  it('answers a follower from the stored copy once the scanned fill is committed: one origin request', async () => {
    const first = edge.get(PAGE, { headers: { 'x-debug-token': 'session-7f3a9c' } });
    await until(() => held.length === 1, 2000);
    const second = edge.get(PAGE, { headers: { 'x-debug-token': 'session-0b12de' } });
    await until(() => edge.node.edge.collapse.waiters === 1, 2000);
    release(false);
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.text, '<html><body></body></html>');
    assert.equal(b.text, '<html><body></body></html>');
    assert.match(String(b.headers['cache-status']), /^strata; hit/);
    assert.equal(origin.count(PAGE), 1);
  });

  it('never hands a follower a response that reflected the leader’s value', async () => {
    const path = `${PAGE.split('?')[0]}?v=reflect`;
    const first = edge.get(path, { headers: { 'x-theme': 'attacker-theme' } });
    await until(() => held.length === 1, 2000);
    const second = edge.get(path);
    await until(() => edge.node.edge.collapse.waiters === 1, 2000);
    release(true);
    await until(() => held.length === 1, 2000); // the follower fetches on its own
    release(true);
    const [a, b] = await Promise.all([first, second]);
    assert.match(a.text, /attacker-theme/);
    assert.doesNotMatch(b.text, /attacker-theme/);
    assert.match(b.text, /themes\/light\.css/);
    assert.equal(origin.count(path), 2);
  });
});
