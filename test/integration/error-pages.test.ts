/**
 * Error answers: they never name an origin's address, and a site may answer them from its own
 * templates (errorPages) — read at start and reload, checked by the schema (check-config).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/index.ts';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';

const LONG = `/checkout/${'basket-summary-with-delivery-options-'.repeat(3)}step-3.html?basket=8f3a2c&currency=EUR`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{status} {reason}</title></head>
<body><h1>Something went wrong ({status})</h1>
<p>We could not reach the shop just now. Quote this reference: <code>{requestId}</code> ({code}).</p>
<p>{unknown} stays as written.</p></body></html>
`;

describe('error pages', () => {
  let live: TestOrigin;
  let deadUrl: string;
  let edge: TestNode;
  let dir: string;
  let page5xx: string;
  let page403: string;

  const sites = (): Array<Record<string, unknown> & { name: string; hosts: string[]; origins: string[] }> => [
    {
      name: 'shop',
      hosts: ['shop.example'],
      origins: ['dead'],
      errorPages: { '5xx': page5xx, '403': page403 },
      security: { deny: ['127.0.0.0/8'] },
    },
    { name: 'api', hosts: ['api.example'], origins: ['dead'], errorPages: { '5xx': page5xx } },
    { name: 'plain', hosts: ['*'], origins: ['dead'] },
    { name: 'live', hosts: ['live.example'], origins: ['live'], errorPages: { '4xx': page403 } },
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-error-pages-'));
    page5xx = join(dir, 'error-5xx.html');
    page403 = join(dir, 'forbidden.txt');
    writeFileSync(page5xx, HTML);
    writeFileSync(page403, '{status} {reason}: not from here (ref {requestId})\n');
    live = await startOrigin({
      '/missing': respond(404, { 'content-type': 'text/plain' }, 'origin says 404'),
    });
    const gone = await startOrigin();
    deadUrl = gone.url;
    await gone.close();
    edge = await startNode({
      origin: deadUrl,
      config: {
        origins: [
          { name: 'dead', url: deadUrl, connectTimeout: 2000 },
          { name: 'live', url: live.url },
        ],
        sites: sites(),
      },
    });
  });
  after(async () => {
    await edge.close();
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers an origin failure with the site's template, filled in, and no address", async () => {
    const res = await edge.get(LONG, { headers: { host: 'api.example' } });
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(Number(res.headers['content-length']), res.body.length);
    assert.equal(res.headers['cache-control'], 'no-store');
    const id = String(res.headers['x-request-id']);
    assert.ok(res.text.includes('<title>502 Bad Gateway</title>'), res.text);
    assert.ok(res.text.includes(`<code>${id}</code> (EDGE_ERR_ORIGIN_CONNECT)`), res.text);
    assert.ok(res.text.includes('{unknown} stays as written.'));
    assert.doesNotMatch(res.text, /127\.0\.0\.1|ECONNREFUSED/);
    assert.doesNotMatch(res.text, new RegExp(`:${new URL(deadUrl).port}\\b`));
  });

  it('picks an exact status over a class, and leaves a site without templates plain', async () => {
    const refused = await edge.get('/', { headers: { host: 'shop.example' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(refused.text, `403 Forbidden: not from here (ref ${refused.headers['x-request-id']})\n`);
    const plain = await edge.get(LONG, { headers: { host: 'other.example' } });
    assert.equal(plain.status, 502);
    assert.equal(plain.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(plain.text, /^502 cannot connect to origin dead\n$/);
  });

  it("relays an origin's own error answer untouched", async () => {
    const res = await edge.get('/missing', { headers: { host: 'live.example' } });
    assert.equal(res.status, 404);
    assert.equal(res.text, 'origin says 404');
    assert.equal(live.count('/missing'), 1);
  });

  it('reads the templates again on reload', async () => {
    writeFileSync(page5xx, '<p>{status}: back soon</p>\n');
    const base = {
      listeners: [{ listen: '127.0.0.1:0' }],
      cache: { dir: join(edge.dir, 'cache') },
      origins: [
        { name: 'dead', url: deadUrl, connectTimeout: 2000 },
        { name: 'live', url: live.url },
      ],
      sites: sites(),
    };
    const next = validateConfig(base);
    assert.ok('config' in next);
    edge.node.reloadSites(next.config);
    const res = await edge.get(LONG, { headers: { host: 'api.example' } });
    assert.equal(res.text, '<p>502: back soon</p>\n');
  });

  it('is checked by the schema: a missing file and a key that is no status are reported with their paths', () => {
    const result = validateConfig({
      origins: [{ name: 'o', url: 'http://127.0.0.1:9' }],
      sites: [
        {
          name: 's',
          hosts: ['*'],
          origins: ['o'],
          errorPages: { '5xx': join(dir, 'no-such-page.html'), '600': page403, '4xx': dir },
        },
      ],
    });
    assert.ok('problems' in result);
    const problems = result.problems.map((p) => `${p.path}: ${p.message}`);
    assert.ok(
      problems.some((p) => p.includes('errorPages.5xx') && p.includes('no-such-page.html')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('status class')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('errorPages.4xx') && p.includes('not a file')),
      problems.join('\n'),
    );
  });
});
