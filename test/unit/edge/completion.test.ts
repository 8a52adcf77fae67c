import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { answered, hold, release, whenClosed } from '../../../src/edge/completion.ts';
import type { RequestContext } from '../../../src/edge/context.ts';
import type { Edge } from '../../../src/edge/edge.ts';

/** An edge whose metrics count the log lines (one lookup sample per logged request). */
function fakeEdge(): { edge: Edge; logged: () => number } {
  let lines = 0;
  const counter = { inc: () => {} };
  const metrics = {
    lookupsBy: () => ({ inc: () => lines++ }),
    bytesBy: () => counter,
    requestsBy: () => counter,
    durationBy: () => ({ observe: () => {} }),
    insertsBy: () => counter,
  };
  const edge = { metrics, access: undefined, config: { logging: { access: false } } } as unknown as Edge;
  return { edge, logged: () => lines };
}

function fakeContext(): { ctx: RequestContext; close: () => void } {
  const res = Object.assign(new EventEmitter(), { closed: false });
  const req = new EventEmitter();
  const ctx = { req, res, latch: 0, lookup: 'miss', bytes: 0, start: 0 } as unknown as RequestContext;
  return {
    ctx,
    close: () => {
      res.closed = true;
      res.emit('close');
    },
  };
}

describe('the completion latch', () => {
  it('logs an answer written whole at once, and never again', () => {
    const { edge, logged } = fakeEdge();
    const { ctx, close } = fakeContext();
    answered(edge, ctx);
    whenClosed(edge, ctx);
    close();
    answered(edge, ctx);
    assert.equal(logged(), 1);
  });

  it('logs a streamed answer once, when the response closes', () => {
    const { edge, logged } = fakeEdge();
    const { ctx, close } = fakeContext();
    whenClosed(edge, ctx);
    whenClosed(edge, ctx);
    assert.equal(logged(), 0);
    close();
    close();
    assert.equal(logged(), 1);
  });

  it('waits for a fill the request leads: logged at its release when the response closed before', () => {
    const { edge, logged } = fakeEdge();
    const { ctx, close } = fakeContext();
    whenClosed(edge, ctx);
    hold(ctx);
    close();
    assert.equal(logged(), 0);
    release(edge, ctx);
    release(edge, ctx);
    assert.equal(logged(), 1);
  });

  it('waits for the close when the fill is released first', () => {
    const { edge, logged } = fakeEdge();
    const { ctx, close } = fakeContext();
    whenClosed(edge, ctx);
    hold(ctx);
    release(edge, ctx);
    assert.equal(logged(), 0);
    close();
    assert.equal(logged(), 1);
  });
});
