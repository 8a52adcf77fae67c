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

  it('--listen-tls without a certificate is reported with its path', () => {
    assert.throws(
      () => loadConfig({ overrides: { origin: 'http://127.0.0.1:3000', listenTls: '127.0.0.1:8443' } }),
      (error: unknown) => error instanceof EdgeError && /listeners\[1\]\.tls\.cert/.test(error.message),
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
