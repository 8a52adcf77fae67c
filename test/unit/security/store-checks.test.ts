import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deceptive, staticExtension } from '../../../src/security/deception.ts';
import { ReflectionScanner, reflectedInHeaders, unkeyedValues } from '../../../src/security/poison.ts';

describe('deception', () => {
  it('reads the static extension a cache would see, through delimiters and encodings', () => {
    assert.equal(staticExtension('/account/x.css'), 'css');
    assert.equal(staticExtension('/account;x.css?v=2'), 'css');
    assert.equal(staticExtension('/account%2Fx.CSS'), 'css');
    assert.equal(staticExtension('/v1.2/account'), undefined);
    assert.equal(staticExtension('/page.html'), undefined);
  });

  it('flags HTML or a mismatched type under a static extension, and trusts matching or generic types', () => {
    assert.equal(deceptive('/account/x.css', 'text/html; charset=utf-8'), true);
    assert.equal(deceptive('/me.json', 'text/html'), true);
    assert.equal(deceptive('/logo.png', 'application/json'), true);
    assert.equal(deceptive('/style.css', 'text/css'), false);
    assert.equal(deceptive('/app.js', 'text/javascript'), false);
    assert.equal(deceptive('/font.woff2', 'font/woff2'), false);
    assert.equal(deceptive('/blob.png', 'application/octet-stream'), false);
    assert.equal(deceptive('/style.css', undefined), false);
    assert.equal(deceptive('/account', 'text/html'), false);
  });
});

describe('poisoning', () => {
  it('takes unkeyed non-default values: custom fields, and forwarding claims only from trusted peers', () => {
    const headers = {
      host: 'shop.example',
      'user-agent': 'Mozilla/5.0',
      'x-forwarded-host': 'evil.example',
      'x-theme': 'dark-evil',
      'sec-fetch-mode': 'navigate',
      'x-short': 'on',
      'accept-language': 'de',
    };
    assert.deepEqual(unkeyedValues(headers, 'shop.example', true), ['evil.example', 'dark-evil']);
    assert.deepEqual(unkeyedValues(headers, 'shop.example', false), ['dark-evil']);
    assert.deepEqual(unkeyedValues(headers, 'shop.example', false, ['x-theme']), [], 'keyed by Vary');
    assert.deepEqual(unkeyedValues({ 'x-forwarded-host': 'shop.example' }, 'shop.example', true), []);
  });

  it('leaves out tracing ids (origins echo them) and the fields a site lists', () => {
    const headers = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'x-request-id': 'f0a1c2d3-1111',
      'x-client-id': 'mobile-app-7',
    };
    assert.deepEqual(unkeyedValues(headers, 'a.example', false), ['mobile-app-7']);
    assert.deepEqual(unkeyedValues(headers, 'a.example', false, [], new Set(['x-client-id'])), []);
  });

  it('also looks for a value as an origin may write it back: list items, percent-encoded, HTML-escaped', () => {
    const values = unkeyedValues(
      {
        'x-forwarded-host': 'evil.example, shop.example',
        'x-custom-host': 'evil.example/x y',
        'x-name': '<script>alert(1)</script>',
      },
      'shop.example',
      true,
    );
    for (const spelled of [
      'evil.example, shop.example',
      'evil.example',
      'evil.example/x y',
      'evil.example/x%20y',
      '<script>alert(1)</script>',
      '&lt;script&gt;alert(1)&lt;/script&gt;',
      '%3Cscript%3Ealert(1)%3C/script%3E',
    ])
      assert.ok(values.includes(spelled), spelled);
    assert.ok(!values.includes('shop.example'), "the node's own host is no claim");
    const scanner = new ReflectionScanner(values);
    assert.equal(scanner.scan(Buffer.from('<script src="//evil.example/x%20y/a.js"></script>')), true);
    const escaped = new ReflectionScanner(values);
    assert.equal(escaped.scan(Buffer.from('<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;</p>')), true);
  });

  it('finds a value reflected in response headers, case-insensitively', () => {
    assert.equal(reflectedInHeaders(['evil.example'], { location: 'https://EVIL.example/login' }), true);
    assert.equal(reflectedInHeaders(['evil.example'], { location: 'https://shop.example/login' }), false);
  });

  it('finds a value split across body chunks, only within the first 64 KiB', () => {
    const scanner = new ReflectionScanner(['evil.example']);
    assert.equal(scanner.scan(Buffer.from('<script src="https://ev')), false);
    assert.equal(scanner.scan(Buffer.from('IL.example/app.js">')), true);
    const late = new ReflectionScanner(['evil.example']);
    assert.equal(late.scan(Buffer.alloc(64 * 1024, 'a')), false);
    assert.equal(late.scan(Buffer.from('evil.example')), false, 'past the scanned bytes');
  });
});
