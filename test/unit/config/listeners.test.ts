import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, validateConfig } from '../../../src/config/load.ts';
import { EdgeError } from '../../../src/errors.ts';

const SITE = {
  origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
  sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
};

describe('listener configuration', () => {
  it('accepts a TLS listener with SNI certificates; HTTP/2 is left to default on', () => {
    const result = validateConfig({
      ...SITE,
      listeners: [
        {
          listen: '0.0.0.0:443',
          tls: {
            cert: 'a.pem',
            key: 'a.key',
            sni: [{ hosts: ['Shop.Example', '*.cdn.example'], cert: 'b.pem', key: 'b.key' }],
          },
        },
      ],
    });
    assert.ok('config' in result);
    const listener = result.config.listeners[0]!;
    assert.deepEqual(listener.tls?.sni[0]?.hosts, ['shop.example', '*.cdn.example']);
    assert.equal(listener.http2, undefined);
    assert.equal(result.config.http2.maxConcurrentStreams, 128);
  });

  it('refuses HTTP/2 on a plain listener, and SNI names that are not host names', () => {
    const result = validateConfig({
      ...SITE,
      listeners: [
        { listen: '127.0.0.1:8080', http2: true },
        {
          listen: '127.0.0.1:8443',
          tls: { cert: 'a', key: 'b', sni: [{ hosts: ['a.*.example'], cert: 'c', key: 'd' }] },
        },
      ],
    });
    assert.ok('problems' in result);
    const paths = result.problems.map((p) => p.path);
    assert.ok(paths.includes('listeners[0].http2'), paths.join());
    assert.ok(paths.includes('listeners[1].tls.sni[0].hosts[0]'), paths.join());
  });

  it('--listen-tls with --tls-cert and --tls-key adds a TLS listener beside the plain one', () => {
    const config = loadConfig({
      overrides: {
        ...{ origin: 'http://127.0.0.1:3000' },
        listenTls: '127.0.0.1:8443',
        tlsCert: 'c.pem',
        tlsKey: 'k.pem',
      },
    });
    assert.deepEqual(
      config.listeners.map((l) => [l.listen, l.tls?.cert, l.tls?.key]),
      [
        ['127.0.0.1:8080', undefined, undefined],
        ['127.0.0.1:8443', 'c.pem', 'k.pem'],
      ],
    );
  });

  it('--listen-tls without a certificate is reported with the flag, not a listener the file lacks', () => {
    const refused = (load: () => unknown) => {
      try {
        load();
      } catch (error) {
        assert.ok(error instanceof EdgeError);
        assert.doesNotMatch(error.message, /listeners\[/, 'no place the operator did not write');
        return error.message;
      }
      assert.fail('expected the flags to be refused');
    };
    const origin = 'http://127.0.0.1:3000';
    assert.match(
      refused(() => loadConfig({ overrides: { origin, listenTls: '127.0.0.1:8443' } })),
      /^ {2}--listen-tls: needs --tls-cert FILE and --tls-key FILE \(or STRATA_TLS_CERT and STRATA_TLS_KEY\)$/m,
    );
    // A certificate without a TLS listener to take it: before, "listeners[1].listen: expected HOST:PORT".
    assert.match(
      refused(() => loadConfig({ overrides: { origin, tlsCert: 'c.pem', tlsKey: 'k.pem' } })),
      /^ {2}--tls-cert: needs --listen-tls HOST:PORT \(or STRATA_LISTEN_TLS\), or a TLS listener in the file$/m,
    );
    assert.match(
      refused(() => loadConfig({ env: { STRATA_TLS_KEY: 'k.pem' }, overrides: { origin } })),
      /^ {2}STRATA_TLS_KEY: needs --listen-tls/m,
    );
    assert.match(
      refused(() => loadConfig({ overrides: { origin, listen: 'nowhere' } })),
      /^ {2}--listen: "nowhere" is not HOST:PORT, e.g. 127\.0\.0\.1:8080$/m,
    );
    assert.match(
      refused(() =>
        loadConfig({ overrides: { origin, listenTls: '8443', tlsCert: 'c.pem', tlsKey: 'k.pem' } }),
      ),
      /^ {2}--listen-tls: "8443" is not HOST:PORT/m,
    );
    // A flag beside its variable wins, as for every flag: STRATA_LISTEN_TLS with --tls-cert and --tls-key.
    const mixed = loadConfig({
      env: { STRATA_LISTEN_TLS: '127.0.0.1:8443', STRATA_TLS_KEY: 'env-k.pem' },
      overrides: { origin, tlsCert: 'c.pem' },
    });
    assert.deepEqual(
      mixed.listeners.map((l) => [l.listen, l.tls?.cert, l.tls?.key]),
      [
        ['127.0.0.1:8080', undefined, undefined],
        ['127.0.0.1:8443', 'c.pem', 'env-k.pem'],
      ],
    );
  });

  it('reads STRATA_LISTEN_TLS, STRATA_TLS_CERT and STRATA_TLS_KEY', () => {
    const config = loadConfig({
      env: { STRATA_LISTEN_TLS: '[::1]:8443', STRATA_TLS_CERT: '/etc/c.pem', STRATA_TLS_KEY: '/etc/k.pem' },
      overrides: { origin: 'http://127.0.0.1:3000', listen: '127.0.0.1:9000' },
    });
    assert.deepEqual(
      config.listeners.map((l) => l.listen),
      ['127.0.0.1:9000', '[::1]:8443'],
    );
  });
});
