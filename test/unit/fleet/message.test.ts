import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busMessageId, decodeBusPurge, encodeBusPurge } from '../../../src/fleet/message.ts';
import { parseSections } from '../../../src/fleet/sections.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('bus messages and shared sections', () => {
  it('round-trips a purge and names it node:sequence for JetStream deduplication', () => {
    const purge = {
      v: 1 as const,
      node: 'n1',
      sequence: 42,
      command: {
        urls: [`http://a.test/${'x'.repeat(120)}`],
        prefixes: [],
        tags: ['t'],
        all: false,
        soft: true,
      },
      at: 1000,
    };
    assert.deepEqual(decodeBusPurge(bytes(encodeBusPurge(purge))), { ok: true, purge });
    assert.equal(busMessageId(purge), 'n1:42');
  });

  it('refuses what is not a purge, with the reason', () => {
    assert.match((decodeBusPurge(bytes('{')) as { reason: string }).reason, /bad JSON/);
    assert.match((decodeBusPurge(bytes('{"v":2}')) as { reason: string }).reason, /version 1/);
    const empty = decodeBusPurge(bytes(JSON.stringify({ v: 1, node: 'n', sequence: 1, command: {} })));
    assert.match((empty as { reason: string }).reason, /empty purge/);
  });

  it('takes sites, origins and geo only', () => {
    assert.deepEqual(parseSections('sites: []\norigins: []'), {
      ok: true,
      sections: { sites: [], origins: [] },
    });
    assert.match(
      (parseSections('cache: {dir: /x}') as { reason: string }).reason,
      /cache: not a shared section/,
    );
    assert.match((parseSections('- a') as { reason: string }).reason, /mapping/);
    assert.match((parseSections('{}') as { reason: string }).reason, /empty/);
    assert.match((parseSections('sites: [') as { reason: string }).reason, /cannot parse/);
  });
});
