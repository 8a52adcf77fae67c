import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isUnsafeMethod, urlsToInvalidate } from '../../../../src/cache/policy/invalidation.ts';

const TARGET = 'http://example.com/items/1';

describe('urlsToInvalidate (RFC 9111 §4.4)', () => {
  it('invalidates nothing after a safe method', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) {
      assert.equal(isUnsafeMethod(method), false);
      assert.deepEqual(urlsToInvalidate(method, 200, TARGET, '/x', undefined), [], method);
    }
  });

  it('invalidates the target URI after an unsafe method with a non-error status', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const status of [200, 201, 204, 302, 399]) {
        assert.deepEqual(urlsToInvalidate(method, status, TARGET, undefined, undefined), [TARGET]);
      }
    }
  });

  it('invalidates nothing after an error or informational status', () => {
    for (const status of [100, 400, 404, 500, 503]) {
      assert.deepEqual(urlsToInvalidate('POST', status, TARGET, '/x', '/y'), [], String(status));
    }
  });

  it('adds same-origin Location and Content-Location, relative or absolute', () => {
    assert.deepEqual(urlsToInvalidate('POST', 201, TARGET, '/items/2', 'http://example.com/items/3'), [
      TARGET,
      'http://example.com/items/2',
      'http://example.com/items/3',
    ]);
    assert.deepEqual(urlsToInvalidate('PUT', 200, TARGET, '2', undefined), [
      TARGET,
      'http://example.com/items/2',
    ]);
  });

  it('never invalidates a URI on another host, port or scheme', () => {
    for (const other of [
      'http://evil.example/items/1',
      'http://example.com:8080/x',
      'https://example.com/x',
      '//evil.example/x',
    ]) {
      assert.deepEqual(urlsToInvalidate('POST', 200, TARGET, other, other), [TARGET], other);
    }
  });

  it('lists a URL once, and ignores unparsable references', () => {
    assert.deepEqual(urlsToInvalidate('POST', 200, TARGET, TARGET, '/items/1'), [TARGET]);
    assert.deepEqual(urlsToInvalidate('POST', 200, TARGET, 'http://[bad', undefined), [TARGET]);
  });
});
