import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BusPurge,
  busMessageId,
  decodeBusPurge,
  encodeBusPurge,
  splitBusPurge,
} from '../../../src/fleet/message.ts';
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
    // The shape a node's file has: put refused `sites: 5`, which every node then rejected.
    assert.equal((parseSections('sites: 5') as { reason: string }).reason, 'sites: expected a list');
    assert.equal((parseSections('origins: {a: 1}') as { reason: string }).reason, 'origins: expected a list');
    assert.equal(
      (parseSections('origins:\n  - {name: a, url: "http://127.0.0.1:1"}\n  - x') as { reason: string })
        .reason,
      'origins: [1]: expected a mapping',
    );
    assert.equal((parseSections('geo: []') as { reason: string }).reason, 'geo: expected a mapping');
  });

  it('splits a purge larger than a message into parts that purge every item once, each within the bound', () => {
    const urls = Array.from(
      { length: 10_000 },
      (_, i) => `http://www.example.com/big/${String(i).padStart(6, '0')}/${'x'.repeat(80)}`,
    );
    const tags = Array.from({ length: 300 }, (_, i) => `tag-${i}`);
    const purge: BusPurge = {
      v: 1,
      node: 'n1',
      sequence: 1525,
      command: { urls, prefixes: [], tags, hosts: ['shop.example'], all: false, soft: true },
      at: 1,
    };
    const bound = 1024 * 1024 - 1024;
    assert.ok(Buffer.byteLength(encodeBusPurge(purge)) > bound, 'the purge is over the bound');
    const parts = splitBusPurge(purge, bound);
    assert.ok(parts.length >= 2);
    const seen = { urls: [] as string[], tags: [] as string[], hosts: [] as string[] };
    for (const [index, part] of parts.entries()) {
      const encoded = encodeBusPurge(part);
      assert.ok(Buffer.byteLength(encoded) <= bound, `part ${index} within the bound`);
      const decoded = decodeBusPurge(new TextEncoder().encode(encoded));
      assert.ok(decoded.ok, `part ${index} decodes`);
      assert.equal(decoded.purge.sequence, 1525);
      assert.equal(decoded.purge.command.soft, true);
      seen.urls.push(...decoded.purge.command.urls);
      seen.tags.push(...decoded.purge.command.tags);
      seen.hosts.push(...(decoded.purge.command.hosts ?? []));
    }
    assert.deepEqual(seen, { urls, tags, hosts: ['shop.example'] });
    assert.equal(busMessageId(parts[0]!, 0), 'n1:1525');
    assert.equal(busMessageId(parts[1]!, 1), 'n1:1525.1');
    const small = { ...purge, command: { ...purge.command, urls: urls.slice(0, 3) } };
    assert.deepEqual(splitBusPurge(small, bound), [small], 'a purge that fits goes as it is');
  });
});
