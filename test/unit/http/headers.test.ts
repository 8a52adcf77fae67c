import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appendCdnLoop,
  appendVia,
  connectionTokens,
  dropUnkeyedClaims,
  endToEndRequestHeaders,
  endToEndResponseHeaders,
  forwardingHeaders,
  isHopByHop,
  loopPasses,
} from '../../../src/http/headers.ts';

describe('hop-by-hop fields', () => {
  it('connectionTokens lower-cases and splits every Connection line', () => {
    assert.deepEqual(connectionTokens(['close, X-Foo', ' x-bar ,']), new Set(['close', 'x-foo', 'x-bar']));
    assert.equal(connectionTokens(undefined), undefined);
    // A single line's set is remembered: asked again (and after other values), the same tokens.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(connectionTokens('Keep-Alive, X-Secret'), new Set(['keep-alive', 'x-secret']));
      assert.deepEqual(connectionTokens(`x-other-${i}`), new Set([`x-other-${i}`]));
    }
  });

  it('isHopByHop knows the standard fields and those named in Connection', () => {
    for (const name of ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']) {
      assert.equal(isHopByHop(name, undefined), true, name);
    }
    assert.equal(isHopByHop('x-foo', new Set(['x-foo'])), true);
    assert.equal(isHopByHop('accept', new Set(['x-foo'])), false);
  });

  it('endToEndRequestHeaders drops hop-by-hop fields, those listed in Connection, and the drop list', () => {
    const headers = endToEndRequestHeaders(
      {
        host: 'example.com',
        connection: 'keep-alive, X-Secret',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic x',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        upgrade: 'websocket',
        'x-secret': '1',
        'x-internal': '2',
        accept: '*/*',
        'set-cookie': ['a=1', 'b=2'],
      },
      new Set(['host', 'x-internal']),
    );
    assert.deepEqual(headers, { accept: '*/*', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('regression: endToEndResponseHeaders kept the fields named by a Connection header spelled in mixed case', () => {
    const list = endToEndResponseHeaders(
      {
        'Content-Type': 'text/plain',
        Connection: 'X-Hop',
        'X-Hop': '1',
        'Keep-Alive': 'timeout=5',
        'Set-Cookie': ['a=1', 'b=2'],
        'Surrogate-Key': 'k',
        Empty: undefined,
      },
      new Set(['surrogate-key']),
    );
    assert.deepEqual(list, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });

  it('endToEndResponseHeaders gives a flat list of lower-case fields without those listed in Connection', () => {
    const list = endToEndResponseHeaders(
      { 'content-length': '3', connection: 'close, x-hop', 'x-hop': '1', 'x-kept': 'yes' },
      new Set(),
    );
    assert.deepEqual(list, ['content-length', '3', 'x-kept', 'yes']);
  });

  it('endToEndResponseHeaders leaves Via to the caller, who appends its own entry to it once', () => {
    const received = { via: '1.1 shield', Via: '1.0 lb', 'cache-control': 'max-age=60' };
    assert.deepEqual(endToEndResponseHeaders(received, new Set()), ['cache-control', 'max-age=60']);
  });
});

describe('appendVia', () => {
  it('adds our entry after any existing ones', () => {
    assert.equal(appendVia(undefined, '1.1', 'strata'), '1.1 strata');
    assert.equal(appendVia('1.0 fred', '1.1', 'strata'), '1.0 fred, 1.1 strata');
    assert.equal(appendVia(['1.0 a', '1.1 b'], '1.1', 'strata'), '1.0 a, 1.1 b, 1.1 strata');
  });
});

describe('forwardingHeaders', () => {
  const spoofed = {
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'bank.example',
    forwarded: 'for=6.6.6.6',
  };

  it('replaces what an untrusted client claims: it cannot spoof X-Forwarded-For', () => {
    const headers = forwardingHeaders({
      clientAddress: '203.0.113.7',
      trusted: false,
      proto: 'http',
      host: 'example.com',
      headers: spoofed,
    });
    assert.deepEqual(headers, {
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'example.com',
      forwarded: 'for=203.0.113.7;host="example.com";proto=http',
    });
  });

  it('extends the chain of a trusted proxy and keeps its proto and host', () => {
    const headers = forwardingHeaders({
      clientAddress: '10.0.0.2',
      trusted: true,
      proto: 'http',
      host: 'example.com',
      headers: { ...spoofed, 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] },
    });
    assert.deepEqual(headers, {
      'x-forwarded-for': '1.1.1.1, 2.2.2.2, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'bank.example',
      // Read from X-Forwarded-For, as the client is judged: not the Forwarded a client wrote.
      forwarded:
        'for=1.1.1.1, for=2.2.2.2;host="example.com";proto=https, for=10.0.0.2;host="example.com";proto=http',
    });
  });

  it('gives an origin reading Forwarded the scheme a TLS balancer was reached by, not only its own hop', () => {
    const behindTls = forwardingHeaders({
      clientAddress: '10.0.0.2',
      trusted: true,
      proto: 'http',
      host: 'shop.example',
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' },
    });
    assert.equal(
      behindTls.forwarded,
      'for=203.0.113.9;host="shop.example";proto=https, for=10.0.0.2;host="shop.example";proto=http',
    );
    assert.equal(behindTls['x-forwarded-proto'], 'https');
    // A proxy that speaks Forwarded only keeps its chain.
    const rfcOnly = forwardingHeaders({
      clientAddress: '10.0.0.2',
      trusted: true,
      proto: 'http',
      host: 'shop.example',
      headers: { forwarded: 'for=198.51.100.4;proto=https' },
    });
    assert.equal(
      rfcOnly.forwarded,
      'for=198.51.100.4;proto=https, for=10.0.0.2;host="shop.example";proto=http',
    );
  });

  it('writes X-Forwarded-For hops as RFC 7239 nodes: ports quoted, IPv6 bracketed, anything else unknown', () => {
    const headers = forwardingHeaders({
      clientAddress: '10.0.0.2',
      trusted: true,
      proto: 'http',
      host: 'shop.example',
      headers: {
        'x-forwarded-for': 'x";proto=https;host="evil, 2001:db8::5, [2001:db8::6]:443, 192.0.2.7:4711',
        'x-forwarded-proto': 'http, HTTPS',
      },
    });
    assert.equal(
      headers.forwarded,
      'for=unknown, for="[2001:db8::5]", for="[2001:db8::6]:443", for="192.0.2.7:4711";host="shop.example";proto=https, for=10.0.0.2;host="shop.example";proto=http',
    );
  });

  it('a trusted proxy that sent nothing gets fresh values', () => {
    const headers = forwardingHeaders({
      clientAddress: '10.0.0.2',
      trusted: true,
      proto: 'https',
      host: 'example.com',
      headers: {},
    });
    assert.equal(headers['x-forwarded-for'], '10.0.0.2');
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-host'], 'example.com');
  });

  it('quotes and brackets an IPv6 node in Forwarded (RFC 7239 §6)', () => {
    const headers = forwardingHeaders({
      clientAddress: '2001:db8::1',
      trusted: false,
      proto: 'http',
      host: 'example.com',
      headers: {},
    });
    assert.equal(headers.forwarded, 'for="[2001:db8::1]";host="example.com";proto=http');
    assert.equal(headers['x-forwarded-for'], '2001:db8::1');
  });
});

describe('unkeyed claims and loops', () => {
  const claims = () => ({
    accept: '*/*',
    'x-forwarded-port': '8443',
    'x-host': 'evil.example',
    'x-original-url': '/admin',
    'x-http-method-override': 'DELETE',
  });

  it('dropUnkeyedClaims removes forwarding claims and rewrites of an untrusted peer', () => {
    const headers: Record<string, string> = claims();
    dropUnkeyedClaims(headers, false, false);
    assert.deepEqual(headers, { accept: '*/*' });
  });

  it('dropUnkeyedClaims keeps a trusted proxy’s claims, and its rewrites only when nothing is stored', () => {
    const fill: Record<string, string> = claims();
    dropUnkeyedClaims(fill, true, true);
    assert.deepEqual(fill, { accept: '*/*', 'x-forwarded-port': '8443', 'x-host': 'evil.example' });
    const pass: Record<string, string> = claims();
    dropUnkeyedClaims(pass, true, false);
    assert.deepEqual(pass, claims());
  });

  it('appendCdnLoop appends our cdn-id with our node id after the received entries (RFC 8586)', () => {
    assert.equal(appendCdnLoop(undefined, 'edge-1', 'n1'), 'edge-1; node=n1');
    assert.equal(appendCdnLoop(['a; v=1', 'b'], 'edge-1', 'n1'), 'a; v=1, b, edge-1; node=n1');
  });

  it('loopPasses counts our name in CDN-Loop (parameters ignored, any case) or Via, and finds our own entry', () => {
    assert.deepEqual(loopPasses({}, 'strata', 'n1'), { named: 0, own: false });
    assert.deepEqual(loopPasses({ 'cdn-loop': 'other, Strata; node=n2, strata' }, 'strata', 'n1'), {
      named: 2,
      own: false,
    });
    assert.deepEqual(loopPasses({ 'cdn-loop': 'other, strata; v=1; node=n1' }, 'strata', 'n1'), {
      named: 1,
      own: true,
    });
    assert.equal(loopPasses({ 'cdn-loop': 'strata-2, xstrata; node=n1' }, 'strata', 'n1').named, 0);
    assert.equal(loopPasses({ 'cdn-loop': 'strata-2, xstrata; node=n1' }, 'strata', 'n1').own, false);
    assert.equal(
      loopPasses({ via: '1.1 strata, HTTP/1.1 strata (Strata), 1.0 other' }, 'strata', 'n1').named,
      2,
    );
    assert.equal(
      loopPasses({ via: '1.1 strata', 'cdn-loop': 'strata, strata, strata' }, 'strata', 'n1').named,
      3,
    );
  });
});
