import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors } from 'undici';
import { EdgeError } from '../../../src/errors.ts';
import { originError } from '../../../src/origin/errors.ts';

describe('origin errors', () => {
  it("calls a request undici would not send the client's fault, never the origin's", () => {
    const refused = new errors.InvalidArgumentError('path must be an absolute URL or start with a slash');
    const error = originError(refused, 'origin-eu-1');
    assert.equal(error.code, 'EDGE_ERR_CLIENT_BAD_REQUEST');
    assert.equal(error.status, 400);
    assert.doesNotMatch(error.message, /origin-eu-1|slash/, 'the client reads neither the origin nor undici');
    assert.equal(error.cause, refused);
  });

  it('names the failure class and the origin for what the network reports', () => {
    const cases: Array<[string, string]> = [
      ['ECONNREFUSED', 'EDGE_ERR_ORIGIN_CONNECT'],
      ['UND_ERR_CONNECT_TIMEOUT', 'EDGE_ERR_ORIGIN_CONNECT_TIMEOUT'],
      ['UND_ERR_HEADERS_TIMEOUT', 'EDGE_ERR_ORIGIN_TIMEOUT'],
      ['UND_ERR_SOCKET', 'EDGE_ERR_ORIGIN_BODY_INCOMPLETE'],
      ['ENOTFOUND', 'EDGE_ERR_ORIGIN_DNS'],
      ['HPE_INVALID_CHUNK_SIZE', 'EDGE_ERR_ORIGIN_PROTOCOL'],
    ];
    for (const [code, expected] of cases) {
      const error = originError(Object.assign(new Error('network said so'), { code }), 'origin-eu-1');
      assert.equal(error.code, expected, code);
      assert.match(error.message, /origin origin-eu-1/, code);
    }
    // Parser errors as undici throws them: no code, the class's name.
    const parser = Object.assign(
      new Error('Response does not match the HTTP/1.1 protocol (Invalid header value char)'),
      {
        name: 'HTTPParserError',
      },
    );
    assert.equal(originError(parser, 'origin-eu-1').code, 'EDGE_ERR_ORIGIN_PROTOCOL');
    const overflow = new errors.HeadersOverflowError();
    assert.equal(originError(overflow, 'origin-eu-1').code, 'EDGE_ERR_ORIGIN_PROTOCOL');
    assert.match(originError(overflow, 'origin-eu-1').message, /headers too large/);
    const coded = new EdgeError('EDGE_ERR_CLIENT_BODY_TIMEOUT', 'request body too slow');
    assert.equal(originError(coded, 'origin-eu-1'), coded);
  });
});
