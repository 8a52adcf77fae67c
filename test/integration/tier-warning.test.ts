/**
 * Tiers: a Strata-Tier header that does not verify is ignored (the request served as any
 * client's), and the node says so in its log, at most once a minute with how many it ignored:
 * a child with another secret, a skewed clock or a Host rewritten on the way otherwise loses
 * its tier trust without a sign. docs/tiers.md, Child → parent trust.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { signTier } from '../../src/http/tier-auth.ts';
import { createClock } from '../helpers/clock.ts';
import { sinkInto } from '../helpers/logs.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const SECRET = 'fleet-secret-for-tier-warnings-0123456789';
const PATH = `/catalogue/2026/${'spring-collection-'.repeat(5)}hero/${'7'.repeat(20)}.html?view=full`;
const HOST = 'shop.example.com';

describe('tiers: a Strata-Tier header that does not verify', () => {
  const clock = createClock();
  const lines: Array<Record<string, unknown>> = [];
  let origin: TestOrigin;
  let shield: TestNode;

  before(async () => {
    origin = await startOrigin();
    origin.route(PATH.split('?')[0]!, (_req, res) => {
      res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/html' });
      res.end('<p>catalogue</p>');
    });
    const sink = sinkInto(lines);
    shield = await startNode({
      origin: origin.url,
      now: clock.now,
      logger: pino({ level: 'info' }, sink),
      config: { logging: { level: 'info', access: false }, tiers: { id: 'shield-1', secret: SECRET } },
    });
  });

  after(async () => {
    await shield?.close();
    await origin?.close();
  });

  const warnings = () => lines.filter((line) => String(line.msg).startsWith('Strata-Tier header ignored'));
  const send = (tier: string) => shield.get(PATH, { headers: { host: HOST, 'strata-tier': tier } });

  it('is served as any client’s, and warned of once a minute with the count', async () => {
    // Signed with another secret, then by a clock two minutes behind: both ignored, one warning.
    const wrongSecret = signTier(`${SECRET}-old`, 'edge-1', clock.now(), 'GET', PATH, undefined, {
      host: HOST,
    });
    const skewed = signTier(SECRET, 'edge-1', clock.now() - 120_000, 'GET', PATH, undefined, { host: HOST });
    for (const tier of [wrongSecret, skewed, wrongSecret]) assert.equal((await send(tier)).status, 200);
    assert.equal(warnings().length, 1);
    assert.equal(warnings()[0]!.ignored, 1);
    assert.equal(warnings()[0]!.level, 40);
    // A header that verifies is no warning.
    const good = signTier(SECRET, 'edge-1', clock.now(), 'GET', PATH, undefined, { host: HOST });
    assert.equal((await send(good)).status, 200);
    clock.advance(61);
    const late = signTier(`${SECRET}-old`, 'edge-1', clock.now(), 'GET', PATH, undefined, { host: HOST });
    assert.equal((await send(late)).status, 200);
    assert.equal(warnings().length, 2);
    assert.equal(warnings()[1]!.ignored, 3, 'the two not warned of, and this one');
    assert.equal(origin.count(PATH), 5);
  });
});
