/**
 * The raw HTTP/2 stream's request and response stand in for node:http's wherever the pipeline
 * takes `req` and `res`: every method the node calls on them must exist on both, or an HTTP/2
 * request that reaches that call throws (a follower leaving its wait once ended the process).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { H2Request, H2Response } from '../../../src/http/h2-exchange.ts';

const SRC = join(import.meta.dirname, '../../../src');

/** Every `name.method(` called on a variable `name` (or `ctx.name`) in the node's sources. */
function calledOn(name: string): Set<string> {
  const methods = new Set<string>();
  const pattern = new RegExp(`(?<![\\w.])(?:ctx\\.)?${name}\\.(\\w+)\\(`, 'g');
  for (const entry of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts') || entry.startsWith('admin')) continue;
    const text = readFileSync(join(SRC, entry), 'utf8');
    for (const match of text.matchAll(pattern)) methods.add(match[1]!);
  }
  return methods;
}

describe('the HTTP/2 raw-stream request and response', () => {
  it('have every method the pipeline calls on req and res', () => {
    const res = calledOn('res');
    const req = calledOn('req');
    assert.ok(res.has('writeHead') && res.has('removeListener'), 'the scan finds the calls');
    assert.ok(req.has('once'), 'the scan finds the calls');
    for (const method of res) {
      assert.equal(
        typeof (H2Response.prototype as unknown as Record<string, unknown>)[method],
        'function',
        `res.${method}`,
      );
    }
    for (const method of req) {
      assert.equal(
        typeof (H2Request.prototype as unknown as Record<string, unknown>)[method],
        'function',
        `req.${method}`,
      );
    }
  });
});
