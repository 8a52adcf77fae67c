import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type ConfigProblem, loadConfig, validateConfig } from '../../../src/config/load.ts';
import { EdgeError } from '../../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeConfig(text: string, extension = 'yaml'): string {
  const file = join(dir, `config-${++fileCount}.${extension}`);
  writeFileSync(file, text);
  return file;
}

function problemsOf(raw: unknown): ConfigProblem[] {
  const result = validateConfig(raw);
  assert.ok('problems' in result, 'expected the config to be refused');
  return result.problems;
}

function paths(problems: ConfigProblem[]): string[] {
  return problems.map((problem) => problem.path).sort();
}

describe('validateConfig', () => {
  it('refuses fleet settings the bus would fail on or that would do nothing', () => {
    const servers = ['nats://127.0.0.1:4222'];
    const missing = join(dir, 'no-such.creds');
    assert.deepEqual(paths(problemsOf({ fleet: { nats: { servers, credentials: missing } } })), [
      'fleet.nats.credentials',
    ]);
    assert.match(
      problemsOf({ fleet: { nats: { servers, credentials: missing } } })[0]!.message,
      /no such file/,
    );
    const retention = { maxAge: '1m' };
    assert.deepEqual(paths(problemsOf({ fleet: { nats: { servers }, retention } })), [
      'fleet.retention.duplicateWindow',
    ]);
    assert.deepEqual(paths(problemsOf({ fleet: { config: { key: 'edges' }, node: 'foo' } })), [
      'fleet.config',
      'fleet.node',
    ]);
    assert.deepEqual(paths(problemsOf({ fleet: { nats: { servers: ['nats://'] } } })), [
      'fleet.nats.servers[0]',
    ]);
    const valid = validateConfig({
      fleet: { nats: { servers }, retention: { maxAge: '1m', duplicateWindow: '30s' } },
    });
    assert.ok('config' in valid);
  });

  it('refuses site settings that would never match or would match everything', () => {
    const origins = [{ name: 'o', url: 'http://127.0.0.1:9' }];
    const site = (extra: Record<string, unknown>) => ({
      origins,
      sites: [{ name: 's', origins: ['o'], ...extra }],
    });
    // Requests are matched in canonical form: shop.example:80 would never match anything.
    assert.deepEqual(paths(problemsOf(site({ hosts: ['shop.example:80'] }))), ['sites[0].hosts[0]']);
    assert.deepEqual(paths(problemsOf(site({ hosts: ['shop.example:443'] }))), ['sites[0].hosts[0]']);
    const dotted = validateConfig(site({ hosts: ['Shop.Example.', 'api.example.:8080'] }));
    assert.ok('config' in dotted);
    assert.deepEqual(dotted.config.sites[0]!.hosts, ['shop.example', 'api.example:8080']);
    // A block rule of no condition refused every request of the site.
    assert.deepEqual(paths(problemsOf(site({ hosts: ['*'], security: { block: [{}] } }))), [
      'sites[0].security.block[0]',
    ]);
  });

  it('refuses a chunk size and a request timeout that would stop the node serving', () => {
    // chunkSize 0 spun the first fill for ever; requestTimeout 0 let a slow client hold a connection.
    for (const chunkSize of [0, 1024, '128MiB']) {
      assert.deepEqual(paths(problemsOf({ cache: { chunkSize } })), ['cache.chunkSize'], String(chunkSize));
    }
    assert.deepEqual(paths(problemsOf({ proxy: { requestTimeout: 0 } })), ['proxy.requestTimeout']);
    // A commit held for seconds would keep every stored response out of other workers' reach.
    for (const commitDelay of ['5s', -1, 'soon']) {
      assert.deepEqual(
        paths(problemsOf({ cache: { commitDelay } })),
        ['cache.commitDelay'],
        String(commitDelay),
      );
    }
    // An HSTS max-age under a second goes out as max-age=0: browsers drop HSTS.
    const site = { name: 's', hosts: ['*'], origins: ['o'], hsts: 500 };
    const origins = [{ name: 'o', url: 'http://127.0.0.1:9' }];
    assert.deepEqual(paths(problemsOf({ origins, sites: [site] })), ['sites[0].hsts']);
    const result = validateConfig({ cache: { chunkSize: '1MiB' }, proxy: { requestTimeout: '5s' } });
    assert.ok('config' in result);
    assert.equal(result.config.cache.chunkSize, 1024 ** 2);
    assert.equal(result.config.cache.commitDelay, 20, 'the default');
  });

  it('fills the defaults that suit an edge', () => {
    const result = validateConfig({});
    assert.ok('config' in result);
    const { config } = result;
    assert.equal(config.cache.maxSize, 4 * 1024 ** 3);
    assert.equal(config.cache.maxObjectSize, 256 * 1024 ** 2);
    assert.deepEqual(config.listeners, [{ listen: '127.0.0.1:8080' }]);
    assert.equal(config.admin.listen, '127.0.0.1:9091');
    assert.equal(config.workers, 1);
    assert.deepEqual(config.sites, []);
  });

  it('freezes the result, deeply', () => {
    const result = validateConfig({ origins: [{ name: 'a', url: 'http://127.0.0.1:1' }] });
    assert.ok('config' in result);
    assert.ok(Object.isFrozen(result.config));
    assert.ok(Object.isFrozen(result.config.cache));
    assert.ok(Object.isFrozen(result.config.origins[0]));
  });

  it('reports every error at once, each with its path', () => {
    const problems = problemsOf({
      bogus: true,
      listeners: [{ listen: 'nowhere' }],
      cache: { maxSize: '4XB', colour: 'red' },
      origins: [
        { name: 'a', url: 'http://10.0.0.1' },
        { name: 'a', url: 'http://10.0.0.2' },
      ],
      sites: [{ name: 's', hosts: ['example.com'], origins: ['missing'] }],
    });
    assert.deepEqual(paths(problems), [
      '',
      'cache',
      'cache.maxSize',
      'listeners[0].listen',
      'origins[1].name',
      'sites[0].origins[0]',
    ]);
    const byPath = new Map(problems.map((problem) => [problem.path, problem.message]));
    assert.match(byPath.get('')!, /unknown key bogus/);
    assert.match(byPath.get('cache')!, /unknown key colour/);
    assert.match(byPath.get('cache.maxSize')!, /"4XB" is not a size/);
    assert.match(byPath.get('listeners[0].listen')!, /HOST:PORT/);
    assert.match(byPath.get('origins[1].name')!, /duplicate origin "a"/);
    assert.match(byPath.get('sites[0].origins[0]')!, /no origin named "missing"/);
  });

  it('refuses two listeners on one port, one of them on every interface, and the admin listener among them', () => {
    const problems = problemsOf({
      listeners: [
        { listen: '127.0.0.1:8080' },
        { listen: ':8080' },
        { listen: '[::1]:8081' },
        { listen: '127.0.0.1:0' },
      ],
      admin: { listen: '127.0.0.1:8080', token: 'a-token-of-sixteen-chars' },
    });
    assert.deepEqual(paths(problems), ['admin.listen', 'listeners[1].listen']);
    const byPath = new Map(problems.map((problem) => [problem.path, problem.message]));
    assert.match(
      byPath.get('listeners[1].listen')!,
      /:8080 clashes with listeners\[0\]\.listen \(127\.0\.0\.1:8080\)/,
    );
    assert.match(byPath.get('admin.listen')!, /clashes with listeners\[0\]\.listen/);
    // Port 0 is the system's choice, a disabled admin listener binds nothing, other ports and addresses are fine.
    const fine = validateConfig({
      listeners: [
        { listen: '127.0.0.1:0' },
        { listen: '127.0.0.1:0' },
        { listen: '127.0.0.2:8080' },
        { listen: '127.0.0.1:8080' },
      ],
      admin: { listen: '127.0.0.1:8080', enabled: false },
    });
    assert.ok(!('problems' in fine), JSON.stringify(fine));
    // 0.0.0.0 takes every IPv4 address only; :: (dual-stack) every address of both families.
    const families = validateConfig({
      listeners: [{ listen: '0.0.0.0:8080' }, { listen: '[::1]:8080' }, { listen: '[::]:8081' }],
      admin: { listen: '127.0.0.1:8081', token: 'a-token-of-sixteen-chars' },
    });
    assert.ok('problems' in families);
    assert.deepEqual(
      families.problems.map((problem) => problem.path),
      ['admin.listen'],
    );
  });

  it('says what a value of the wrong type should have been', () => {
    const problems = problemsOf({
      cache: { maxSize: true },
      proxy: { requestTimeout: { a: 1 } },
      workers: 'two',
    });
    const byPath = new Map(problems.map((problem) => [problem.path, problem.message]));
    assert.match(byPath.get('cache.maxSize')!, /^expected a size: .*8KiB/);
    assert.match(byPath.get('proxy.requestTimeout')!, /^expected a duration: .*30s/);
    assert.equal(byPath.get('workers'), 'expected a number of workers (1 to 256) or auto');
  });

  it('refuses maxObjectSize larger than maxSize', () => {
    const problems = problemsOf({ cache: { maxSize: '1MiB', maxObjectSize: '2MiB' } });
    assert.deepEqual(paths(problems), ['cache.maxObjectSize']);
  });

  it('refuses origin URLs with a path, a query, a fragment, credentials, port 0 or another scheme', () => {
    for (const url of [
      'http://x/path',
      'http://x/?q=1',
      'ftp://x',
      'not a url',
      'http://',
      'http://x:99999',
      'http://x:0',
      'http://user:secret@x:8080',
      'http://user@x',
      'http://x:8080#top',
    ]) {
      const problems = problemsOf({ origins: [{ name: 'o', url }] });
      assert.deepEqual(paths(problems), ['origins[0].url'], url);
    }
  });

  it('reads human sizes and durations into bytes and milliseconds', () => {
    const result = validateConfig({
      cache: { maxSize: '10GiB', maxObjectSize: '1MB', heuristicMax: '1h' },
      origins: [{ name: 'o', url: 'http://x', connectTimeout: '250ms' }],
    });
    assert.ok('config' in result);
    assert.equal(result.config.cache.maxSize, 10 * 1024 ** 3);
    assert.equal(result.config.cache.maxObjectSize, 1_000_000);
    assert.equal(result.config.cache.heuristicMax, 3_600_000);
    assert.equal(result.config.origins[0]!.connectTimeout, 250);
  });
});

describe('loadConfig', () => {
  const file = writeConfig(
    [
      'listeners:',
      '  - listen: 127.0.0.1:7000',
      'cache:',
      '  dir: /from-file',
      '  maxSize: 1GiB',
      'admin:',
      '  listen: 127.0.0.1:7001',
      'logging:',
      '  level: warn',
    ].join('\n'),
  );

  it('uses the defaults without a file', () => {
    const config = loadConfig();
    assert.equal(config.cache.dir, '.strata-cache');
    assert.equal(config.listeners[0]!.listen, '127.0.0.1:8080');
  });

  it('the file overrides the defaults', () => {
    const config = loadConfig({ file });
    assert.equal(config.listeners[0]!.listen, '127.0.0.1:7000');
    assert.equal(config.cache.dir, '/from-file');
    assert.equal(config.cache.maxSize, 1024 ** 3);
    assert.equal(config.cache.maxObjectSize, 256 * 1024 ** 2);
    assert.equal(config.logging.level, 'warn');
  });

  it('STRATA_* environment variables override the file', () => {
    const config = loadConfig({
      file,
      env: { STRATA_LISTEN: '127.0.0.1:7100', STRATA_CACHE_DIR: '/from-env', STRATA_LOG_LEVEL: 'error' },
    });
    assert.equal(config.listeners[0]!.listen, '127.0.0.1:7100');
    assert.equal(config.cache.dir, '/from-env');
    assert.equal(config.logging.level, 'error');
    assert.equal(config.admin.listen, '127.0.0.1:7001');
  });

  it('overrides (flags) override the environment', () => {
    const config = loadConfig({
      file,
      env: { STRATA_CACHE_DIR: '/from-env', STRATA_ADMIN_TOKEN: 'env-token-0123456789' },
      overrides: {
        cacheDir: '/from-flag',
        adminListen: '127.0.0.1:7201',
        adminToken: 'flag-token-0123456789',
      },
    });
    assert.equal(config.cache.dir, '/from-flag');
    assert.equal(config.admin.listen, '127.0.0.1:7201');
    assert.equal(config.admin.token, 'flag-token-0123456789');
    assert.equal(config.cache.maxSize, 1024 ** 3);
  });

  it('ignores environment variables that are not its own', () => {
    const config = loadConfig({ env: { LISTEN: '1.2.3.4:1', STRATA_UNKNOWN: 'x' } });
    assert.equal(config.listeners[0]!.listen, '127.0.0.1:8080');
  });

  it('an origin flag adds a catch-all site for the hosts no site of the file claims', () => {
    const withSite = writeConfig(
      [
        'origins:',
        '  - name: main',
        '    url: http://10.0.0.1:8080',
        'sites:',
        '  - name: main',
        '    hosts: [example.com]',
        '    origins: [main]',
      ].join('\n'),
    );
    const config = loadConfig({ file: withSite, overrides: { origin: '127.0.0.1:9000' } });
    assert.deepEqual(
      config.sites.map((site) => [site.name, site.hosts, site.origins]),
      [
        ['main', ['example.com'], ['main']],
        ['default', ['*'], ['origin']],
      ],
    );
    assert.equal(config.origins[1]!.url, 'http://127.0.0.1:9000');
  });

  it('refuses an origin flag or STRATA_ORIGIN that is not an origin URL, naming the flag', () => {
    const bad = [
      'notaurl',
      'ftp://x',
      'http://',
      'http://x:99999',
      'http://x:8080/app',
      'http://user:secret@x:8080',
      'localhost',
    ];
    for (const origin of bad) {
      assert.throws(
        () => loadConfig({ overrides: { origin } }),
        (error: unknown) => {
          assert.ok(error instanceof EdgeError);
          assert.equal(error.code, 'EDGE_ERR_CONFIG_INVALID');
          assert.match(error.message, /^ {2}--origin: /m, origin);
          assert.ok(error.message.includes(JSON.stringify(origin)), error.message);
          return true;
        },
        origin,
      );
    }
    assert.throws(
      () => loadConfig({ env: { STRATA_ORIGIN: 'notaurl' } }),
      (error: unknown) => error instanceof EdgeError && /^ {2}STRATA_ORIGIN: /m.test(error.message),
    );
    // The documented forms stay: a URL with or without its slash, and the HOST:PORT shorthand.
    for (const [origin, url] of [
      ['http://127.0.0.1:9000/', 'http://127.0.0.1:9000'],
      ['https://example.com', 'https://example.com'],
      ['127.0.0.1:9000', 'http://127.0.0.1:9000'],
      ['[::1]:9000', 'http://[::1]:9000'],
      ['localhost:9000', 'http://localhost:9000'],
    ] as const) {
      assert.equal(loadConfig({ overrides: { origin } }).origins[0]!.url, url, origin);
    }
  });

  it('--origin wins over STRATA_ORIGIN, as every flag wins over the environment', () => {
    const config = loadConfig({
      env: { STRATA_ORIGIN: 'http://127.0.0.1:9001' },
      overrides: { origin: 'http://127.0.0.1:9002' },
    });
    assert.deepEqual(
      config.origins.map((origin) => [origin.name, origin.url]),
      [['origin', 'http://127.0.0.1:9002']],
    );
    assert.deepEqual(
      config.sites.map((site) => site.name),
      ['default'],
    );
  });

  it('names the variable or flag that set a refused value, with the key it set', () => {
    const refusal = (options: Parameters<typeof loadConfig>[0]) => {
      try {
        loadConfig({ ...options, overrides: { origin: 'http://127.0.0.1:9000', ...options?.overrides } });
      } catch (error) {
        assert.ok(error instanceof EdgeError);
        return error.message;
      }
      assert.fail('expected the value to be refused');
    };
    assert.match(
      refusal({ env: { STRATA_LOG_LEVEL: 'loud' } }),
      /^ {2}STRATA_LOG_LEVEL \(logging\.level\): /m,
    );
    assert.match(
      refusal({ env: { STRATA_ADMIN_TOKEN: 'short' } }),
      /^ {2}STRATA_ADMIN_TOKEN \(admin\.token\): use at least 16 characters$/m,
    );
    // The flag wins over its variable, and is the one named.
    assert.match(
      refusal({ env: { STRATA_ADMIN_TOKEN: 'short' }, overrides: { adminToken: 'also-short' } }),
      /^ {2}--admin-token \(admin\.token\): /m,
    );
    assert.match(
      refusal({ overrides: { listen: '127.0.0.1:7200', adminListen: '127.0.0.1:7200' } }),
      /^ {2}--admin-listen \(admin\.listen\): 127\.0\.0\.1:7200 clashes with listeners\[0\]\.listen/m,
    );
  });

  it('refuses an origin flag the file leaves no room for, naming the flag and the field in the way', () => {
    const refused = (text: string) => {
      const file = writeConfig(text);
      try {
        loadConfig({ file, overrides: { origin: 'http://127.0.0.1:9002' } });
      } catch (error) {
        assert.ok(error instanceof EdgeError);
        return error.message;
      }
      assert.fail('expected the flag to be refused');
    };
    const app = 'origins:\n  - { name: app, url: "http://127.0.0.1:9001" }\n';
    // An origin of the file already named origin: not "duplicate origin" at origins[1], which no file has.
    assert.match(
      refused(
        'origins:\n  - { name: origin, url: "http://127.0.0.1:9001" }\nsites:\n  - { name: s, hosts: [a.example], origins: [origin] }\n',
      ),
      /^ {2}--origin: the configuration already has an origin named "origin" \(origins\[0\]\)/m,
    );
    // A site of the file already named default.
    assert.match(
      refused(`${app}sites:\n  - { name: default, hosts: [a.example], origins: [app] }\n`),
      /^ {2}--origin: the configuration already has a site named "default" \(sites\[0\]\)/m,
    );
    // A site of the file answering every host: the flag's origin would never be asked.
    assert.match(
      refused(`${app}sites:\n  - { name: all, hosts: ["*"], origins: [app] }\n`),
      /^ {2}--origin: sites\[0\] \("all"\) already answers every host \(\*\)/m,
    );
    // One that names the flag's origin uses it: accepted, the file's site answering first.
    const uses = loadConfig({
      file: writeConfig('sites:\n  - { name: all, hosts: ["*"], origins: [origin] }\n'),
      overrides: { origin: 'http://127.0.0.1:9002' },
    });
    assert.deepEqual(
      uses.sites.map((site) => [site.name, site.origins]),
      [
        ['all', ['origin']],
        ['default', ['origin']],
      ],
    );
  });

  it('reads JSON files too', () => {
    const json = writeConfig(JSON.stringify({ cache: { dir: '/json' } }), 'json');
    assert.equal(loadConfig({ file: json }).cache.dir, '/json');
  });

  it('treats an empty file as an empty config', () => {
    assert.equal(loadConfig({ file: writeConfig('') }).cache.dir, '.strata-cache');
  });

  it('throws EDGE_ERR_CONFIG_INVALID listing every problem with its path', () => {
    const bad = writeConfig('cache:\n  maxSize: 4XB\nextra: 1\n');
    assert.throws(
      () => loadConfig({ file: bad }),
      (error: unknown) => {
        assert.ok(error instanceof EdgeError);
        assert.equal(error.code, 'EDGE_ERR_CONFIG_INVALID');
        assert.match(error.message, /cache\.maxSize: "4XB" is not a size/);
        assert.match(error.message, /\(top level\): unknown key extra/);
        assert.ok(error.message.includes(bad));
        return true;
      },
    );
  });

  it('throws EDGE_ERR_CONFIG_READ for a missing file, bad YAML, or a non-mapping', () => {
    for (const path of [join(dir, 'missing.yaml'), writeConfig('a: [1, 2'), writeConfig('- 1\n- 2\n')]) {
      assert.throws(
        () => loadConfig({ file: path }),
        (error: unknown) => error instanceof EdgeError && error.code === 'EDGE_ERR_CONFIG_READ',
        path,
      );
    }
  });
});

describe('proxy.trustedProxies', () => {
  it('reports an entry that is neither an address nor a CIDR range at check time, not at start', () => {
    const problems = problemsOf({ proxy: { trustedProxies: ['10.0.0.0/8', '::1', 'foo', '10.0.0.0/40'] } });
    assert.deepEqual(paths(problems), ['proxy.trustedProxies[2]', 'proxy.trustedProxies[3]']);
  });
});
