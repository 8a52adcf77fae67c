/**
 * `strata check-config` as an operator runs it: every problem placed as file:line:col, the
 * nearest key for a typo, every check `strata serve` makes before binding a port (the admin token
 * on a public address, the TLS files), and what sites say about each other.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createFixtures } from '../helpers/certs.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'strata.ts');
const dir = mkdtempSync(join(tmpdir(), 'strata-check-'));
const certs = createFixtures();
after(() => {
  rmSync(dir, { recursive: true, force: true });
  certs.remove();
});

function run(args: string[], env: Record<string, string> = {}) {
  const clean = { ...process.env };
  delete clean.STRATA_ADMIN_TOKEN;
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...clean, ...env } });
}

function check(name: string, text: string, env: Record<string, string> = {}) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return { file, ...run(['check-config', file], env) };
}

const ORIGINS = 'origins:\n  - name: app\n    url: http://127.0.0.1:3000\n';

describe('strata check-config', () => {
  it('places each problem at file:line:col and suggests the key meant by a typo', () => {
    const { file, status, stderr } = check(
      'typo.yaml',
      `${ORIGINS}sites:\n  - name: shop\n    hosts: [shop.example.com]\n    origins: [app]\n    sortQuerry: true\ncache:\n  maxSize: 4XB\n  memroySize: 1GiB\n`,
    );
    assert.equal(status, 1);
    assert.match(
      stderr,
      new RegExp(`^${file}:8:5: sites\\[0\\]: unknown key sortQuerry \\(did you mean sortQuery\\?\\)$`, 'm'),
    );
    assert.match(stderr, new RegExp(`^${file}:10:12: cache\\.maxSize: "4XB" is not a size`, 'm'));
    assert.match(
      stderr,
      new RegExp(`^${file}:11:3: cache: unknown key memroySize \\(did you mean memorySize\\?\\)$`, 'm'),
    );
    assert.match(stderr, /: 3 problems$/m);
  });

  it('places a YAML syntax error too, in one line', () => {
    const { file, status, stderr } = check('syntax.yaml', 'sites:\n  - name: [\n');
    assert.equal(status, 1);
    assert.match(stderr, new RegExp(`^strata: cannot parse config file ${file}:\\d+:\\d+: `));
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  });

  it('refuses what serve refuses: an admin listener on a public address without a token', () => {
    const text = `${ORIGINS}sites:\n  - name: s\n    hosts: ["*"]\n    origins: [app]\nadmin:\n  listen: 0.0.0.0:9091\n`;
    const refused = check('admin.yaml', text);
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /admin\.yaml:9:11: admin\.listen: admin listener on 0\.0\.0\.0:9091 \(not loopback\) needs admin\.token/,
    );
    // The environment counts as serve counts it.
    const withToken = run(['check-config', refused.file], { STRATA_ADMIN_TOKEN: 'a-token-of-twenty-chars' });
    assert.equal(withToken.status, 0, withToken.stderr);
    assert.match(withToken.stdout, /valid/);
  });

  it('refuses TLS files that do not exist, do not parse, or do not belong together', () => {
    const leaf = certs.leaf('shop', ['shop.example.com']);
    const other = certs.leaf('other', ['other.example.com']);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const site = 'sites:\n  - name: s\n    hosts: ["*"]\n    origins: [app]\n';
    const tls = (cert: string, key: string) =>
      `${ORIGINS}${site}listeners:\n  - listen: 127.0.0.1:8443\n    tls:\n      cert: ${cert}\n      key: ${key}\n`;
    const missing = check('tls-missing.yaml', tls(join(dir, 'nope.pem'), leaf.key));
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /tls-missing\.yaml:11:13: listeners\[0\]\.tls\.cert: cannot read .*nope\.pem: ENOENT/,
    );
    const broken = check('tls-broken.yaml', tls(garbage, leaf.key));
    assert.equal(broken.status, 1);
    assert.match(broken.stderr, /listeners\[0\]\.tls\.cert: certificate .*garbage\.pem .* not usable/);
    const mismatched = check('tls-mismatch.yaml', tls(leaf.cert, other.key));
    assert.equal(mismatched.status, 1);
    assert.match(mismatched.stderr, /not usable/);
    const good = check('tls-good.yaml', tls(leaf.cert, leaf.key));
    assert.equal(good.status, 0, good.stderr);
  });

  it('notes a certificate that expired or is not valid yet, and says valid (serve starts with it)', () => {
    const expired = certs.datedLeaf('old', ['old.example.com'], '20200101000000Z', '20200201000000Z');
    const early = certs.datedLeaf('early', ['early.example.com'], '20990101000000Z', '20991231000000Z');
    const site = 'sites:\n  - name: s\n    hosts: ["*"]\n    origins: [app]\n';
    const { status, stdout, stderr } = check(
      'tls-dates.yaml',
      `${ORIGINS}${site}listeners:\n  - listen: 127.0.0.1:8443\n    tls:\n      cert: ${expired.cert}\n      key: ${expired.key}\n` +
        `      sni:\n        - hosts: [early.example.com]\n          cert: ${early.cert}\n          key: ${early.key}\n`,
    );
    assert.equal(status, 0, stderr);
    assert.match(stdout, /valid/);
    assert.match(
      stderr,
      /tls-dates\.yaml:11:13: listeners\[0\]\.tls\.cert: certificate .*old\.pem expired on 2020-02-01T00:00:00\.000Z: clients that check it refuse the connection \(note\)/,
    );
    assert.match(
      stderr,
      /listeners\[0\]\.tls\.sni\[0\]\.cert: certificate .*early\.pem not valid before 2099-01-01T00:00:00\.000Z/,
    );
  });

  it('refuses duplicate site names, a host claimed twice and a memorySize above maxSize; notes overlapping wildcards', () => {
    const { status, stderr } = check(
      'sites.yaml',
      `${ORIGINS}sites:\n  - name: web\n    hosts: ["*.example.com", www.example.com]\n    origins: [app]\n  - name: web\n    hosts: ["*.img.example.com", WWW.Example.com]\n    origins: [app]\ncache:\n  maxSize: 1GiB\n  memorySize: 2GiB\n`,
    );
    assert.equal(status, 1);
    assert.match(stderr, /sites\.yaml:8:11: sites\[1\]\.name: duplicate site name "web" \(also sites\[0\]\)/);
    assert.match(
      stderr,
      /sites\.yaml:9:34: sites\[1\]\.hosts\[1\]: host "WWW\.Example\.com" is already claimed by sites\[0\]/,
    );
    assert.match(stderr, /sites\.yaml:13:15: cache\.memorySize: must not exceed cache\.maxSize/);
    assert.match(
      stderr,
      /\*\.img\.example\.com takes its names from \*\.example\.com \(sites\[0\]\): the longest wildcard wins \(note\)/,
    );
    assert.match(stderr, /: 3 problems$/m);
  });

  it('notes a parent probed with no host of a site of wildcard hosts only; not once healthCheck.host names one', () => {
    const base = [
      'origins:',
      '  - { name: shield, url: "http://127.0.0.1:3001", tier: parent }',
      '  - { name: app, url: "http://127.0.0.1:3000" }',
      'tiers: { id: edge-1, secret: fleet-secret-for-tiers-0123456789abcdef }',
      'sites:',
      '  - name: shop',
      '    hosts: ["*.shop.example"]',
      '    origins: [shield]',
      '    backup: [app]',
      '    goDirect: true',
    ].join('\n');
    const bare = check('probe-host.yaml', `${base}\n    healthCheck: { path: /health }\n`);
    assert.equal(bare.status, 0, bare.stderr);
    assert.match(
      bare.stderr,
      /probe-host\.yaml:\d+:\d+: sites\[0\]\.healthCheck: parent shield is probed with its own address as Host \(the site has wildcard hosts only\): a shield answers 421 and every probe fails; name a host it serves in healthCheck\.host \(note\)/,
    );
    const named = check(
      'probe-host-named.yaml',
      `${base}\n    healthCheck: { path: /health, host: www.shop.example }\n`,
    );
    assert.equal(named.status, 0, named.stderr);
    assert.doesNotMatch(named.stderr, /probed with its own address/);
    const bad = check(
      'probe-host-bad.yaml',
      `${base}\n    healthCheck: { path: /health, host: "www.shop.example/x" }\n`,
    );
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /sites\[0\]\.healthCheck\.host: a host name or address, with an optional :port/);
  });

  it('refuses origin URLs serve refuses: credentials, a fragment, port 0, a path, no host', () => {
    const { file, status, stderr } = check(
      'origin-urls.yaml',
      [
        'origins:',
        '  - { name: a, url: "http://user:secret@127.0.0.1:3000" }',
        '  - { name: b, url: "http://127.0.0.1:3000#top" }',
        '  - { name: c, url: "http://127.0.0.1:0" }',
        '  - { name: d, url: "http://127.0.0.1:3000/app" }',
        '  - { name: e, url: "http://" }',
        '  - { name: f, url: notaurl }',
        'sites:',
        '  - { name: s, hosts: ["*"], origins: [a, b, c, d, e, f] }',
        '',
      ].join('\n'),
    );
    assert.equal(status, 1);
    for (let i = 0; i < 6; i++) {
      assert.match(
        stderr,
        new RegExp(
          `^${file}:${i + 2}:\\d+: origins\\[${i}\\]\\.url: expected an http:// or https:// URL`,
          'm',
        ),
      );
    }
    assert.match(stderr, /: 6 problems$/m);
  });

  it('reports and places the names that refer to nothing beside a problem of another field', () => {
    const { file, status, stderr } = check(
      'names.yaml',
      [
        'origins:',
        '  - { name: a, url: "http://127.0.0.1:3000", weight: 0 }',
        '  - { name: a, url: "http://127.0.0.1:3001" }',
        'sites:',
        '  - name: s',
        '    hosts: [example.com]',
        '    origins: [a, nope]',
        '    backup: [s, ghost]',
        '    selection: fastest',
        '',
      ].join('\n'),
    );
    assert.equal(status, 1);
    assert.match(stderr, new RegExp(`^${file}:2:54: origins\\[0\\]\\.weight: Too small`, 'm'));
    assert.match(stderr, new RegExp(`^${file}:3:13: origins\\[1\\]\\.name: duplicate origin "a"$`, 'm'));
    assert.match(
      stderr,
      new RegExp(`^${file}:7:18: sites\\[0\\]\\.origins\\[1\\]: no origin named "nope"$`, 'm'),
    );
    assert.match(
      stderr,
      new RegExp(`^${file}:8:14: sites\\[0\\]\\.backup\\[0\\]: site "s" cannot be its own backup$`, 'm'),
    );
    assert.match(
      stderr,
      new RegExp(`^${file}:8:17: sites\\[0\\]\\.backup\\[1\\]: no origin or site named "ghost"$`, 'm'),
    );
    assert.match(stderr, new RegExp(`^${file}:9:16: sites\\[0\\]\\.selection: Invalid option`, 'm'));
    assert.match(stderr, /: 6 problems$/m);
  });

  it("refuses an https origin's CA file that serve could not read or use", () => {
    const garbage = join(dir, 'garbage-ca.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const text = (ca: string) =>
      `origins:\n  - name: app\n    url: https://127.0.0.1:3000\n    tls:\n      ca: ${ca}\nsites:\n  - { name: s, hosts: ["*"], origins: [app] }\n`;
    const missing = check('ca-missing.yaml', text(join(dir, 'nope-ca.pem')));
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /ca-missing\.yaml:5:11: origins\[0\]\.tls\.ca: cannot read .*nope-ca\.pem: ENOENT/,
    );
    const broken = check('ca-broken.yaml', text(garbage));
    assert.equal(broken.status, 1);
    assert.match(
      broken.stderr,
      /ca-broken\.yaml:5:11: origins\[0\]\.tls\.ca: .*garbage-ca\.pem holds no PEM certificate/,
    );
    const good = check('ca-good.yaml', text(certs.caFile));
    assert.equal(good.status, 0, good.stderr);
  });

  it('says valid for a good file (JSON placed too), and prints its version', () => {
    const good = check(
      'good.json',
      JSON.stringify({
        origins: [{ name: 'app', url: 'http://127.0.0.1:3000' }],
        sites: [{ name: 'app', hosts: ['*'], origins: ['app'] }],
      }),
    );
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stdout, `${good.file}: valid\n`);
    const bad = check(
      'bad.json',
      '{\n  "sites": [\n    {"name": "x", "hosts": ["*"], "origins": ["nope"]}\n  ]\n}\n',
    );
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.json:3:47: sites\[0\]\.origins\[0\]: no origin named "nope"/);
    const version = run(['--version']);
    assert.equal(version.status, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
