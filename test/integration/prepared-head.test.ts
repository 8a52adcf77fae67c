/**
 * A hit's head written from prepared text (src/http/prepared-head.ts) must be the response
 * writeHead would have written: the same fields once each, the connection fields node:http
 * writes, a Content-Length that frames the body — on pipelined requests, on the last request
 * of a connection, and for HTTP/1.0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/node.ts';
import { respond, startOrigin, type TestOrigin } from '../helpers/origin.ts';
import { rawExchange } from '../helpers/raw.ts';

const LONG = `/catalogue/${'spring-collection/'.repeat(6)}linen-shirt.json?colour=blue&size=m&ref=newsletter`;
const body = Buffer.from(`{"items":[${'"linen",'.repeat(150)}"end"]}`);
const headers = {
  'cache-control': 'max-age=60',
  'content-type': 'application/json',
  etag: '"shirt-7"',
  'x-origin-note': 'a field of real length '.repeat(8).trim(),
};

/** The responses in a raw HTTP/1.1 exchange: status, fields (lower-case names, in order), body. */
function parse(text: string): Array<{ status: number; fields: Array<[string, string]>; body: string }> {
  const out: Array<{ status: number; fields: Array<[string, string]>; body: string }> = [];
  let rest = text;
  for (let n = 0; n < 20 && rest.length > 0; n++) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end > 0, `a head in ${JSON.stringify(rest.slice(0, 80))}`);
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const fields = lines.slice(1).map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const length = Number(fields.find(([name]) => name === 'content-length')?.[1] ?? 0);
    out.push({ status, fields, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

const field = (fields: Array<[string, string]>, name: string) =>
  fields.filter(([n]) => n === name).map(([, v]) => v);

describe('hits written from a prepared head', () => {
  let origin: TestOrigin;
  let edge: TestNode;
  let port: number;

  before(async () => {
    origin = await startOrigin({
      [LONG.split('?')[0]!]: respond(200, headers, body),
      '/short': respond(200, headers, body),
    });
    edge = await startNode({ origin: origin.url, config: { proxy: { maxRequestsPerConnection: 3 } } });
    port = Number(new URL(edge.url).port);
    for (const path of [LONG, '/short']) {
      const miss = await edge.get(path);
      assert.match(String(miss.headers['cache-status']), /fwd=miss/);
    }
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('answers pipelined hits with each field once and the body framed, and closes after the last allowed request', async () => {
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const get = (path: string) => `GET ${path} HTTP/1.1\r\n${host}\r\n`;
    const { text, closed } = await rawExchange(port, get(LONG) + get('/short') + get(LONG));
    const answers = parse(text);
    assert.equal(answers.length, 3);
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body, body.toString('latin1'));
      assert.match(field(answer.fields, 'cache-status')[0]!, /^strata; hit/);
      for (const name of ['date', 'content-length', 'connection', 'age', 'etag', 'x-request-id'])
        assert.equal(field(answer.fields, name).length, 1, `${name} once in answer ${i}`);
      assert.deepEqual(field(answer.fields, 'x-origin-note'), [headers['x-origin-note']]);
    }
    assert.deepEqual(field(answers[0]!.fields, 'connection'), ['keep-alive']);
    assert.equal(field(answers[0]!.fields, 'keep-alive').length, 1);
    // The third request is the last maxRequestsPerConnection allows: writeHead's own path.
    assert.deepEqual(field(answers[2]!.fields, 'connection'), ['close']);
    assert.ok(closed);
    assert.equal(origin.count(LONG), 1);
  });

  it('writes the same fields as the writeHead path (a HEAD of the same entry)', async () => {
    const host = `Host: 127.0.0.1:${port}\r\nConnection: close\r\n`;
    const get = parse(
      (await rawExchange(port, `GET /short HTTP/1.1\r\nX-Request-Id: a\r\n${host}\r\n`)).text,
    );
    const head = parse(
      (await rawExchange(port, `HEAD /short HTTP/1.1\r\nX-Request-Id: a\r\n${host}\r\n`)).text,
    );
    const names = (fields: Array<[string, string]>) => fields.map(([name]) => name).sort();
    assert.deepEqual(names(get[0]!.fields), names(head[0]!.fields));
  });

  it('answers HTTP/1.0 and Connection: close hits with Connection: close and closes', async () => {
    for (const request of [
      `GET /short HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
      `GET /short HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    ]) {
      const { text, closed } = await rawExchange(port, request);
      const [answer] = parse(text);
      assert.equal(answer!.status, 200);
      assert.equal(answer!.body, body.toString('latin1'));
      assert.match(field(answer!.fields, 'cache-status')[0]!, /^strata; hit/);
      assert.ok(closed);
    }
  });
});
