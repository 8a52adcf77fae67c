import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { GatheredCommits } from '../../../src/cache/gathered-commits.ts';

/** A transaction runner that records how many works each transaction ran. */
function runner(fail?: () => Error | undefined) {
  const transactions: number[] = [];
  let ran = 0;
  const run = <T>(work: () => T): Promise<T> => {
    const before = ran;
    const result = work();
    transactions.push(ran - before);
    const error = fail?.();
    return error === undefined ? Promise.resolve(result) : Promise.reject(error);
  };
  const work =
    <T>(value: T) =>
    (): T => {
      ran++;
      return value;
    };
  return { run, transactions, work };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('GatheredCommits', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('runs the commits made within the delay in one transaction, each with its own result', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 20);
    const first = commits.commit(work('a'));
    mock.timers.tick(15);
    const second = commits.commit(work('b'));
    const third = commits.commit(work('c'));
    assert.deepEqual(transactions, [], 'nothing runs before the delay');
    assert.equal(commits.waiting, 3);
    mock.timers.tick(5);
    assert.deepEqual(transactions, [3], 'the delay counts from the first commit');
    assert.deepEqual(await Promise.all([first, second, third]), ['a', 'b', 'c']);
    const fourth = commits.commit(work('d'));
    mock.timers.tick(20);
    assert.equal(await fourth, 'd');
    assert.deepEqual(transactions, [3, 1]);
  });

  it('starts a full batch at once', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 20, 3);
    const done = [commits.commit(work(1)), commits.commit(work(2)), commits.commit(work(3))];
    assert.deepEqual(transactions, [3]);
    assert.deepEqual(await Promise.all(done), [1, 2, 3]);
    void commits.commit(work(4));
    assert.deepEqual(transactions, [3], 'the next batch waits again');
  });

  it('commits at once without a delay', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 0);
    assert.equal(await commits.commit(work('x')), 'x');
    assert.deepEqual(transactions, [1]);
  });

  it('commits at once while someone holds it open, and waits again after the release', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 20);
    const waiting = commits.commit(work('before'));
    const release = commits.hold();
    assert.deepEqual(transactions, [1], 'a hold starts what waits');
    assert.equal(await waiting, 'before');
    assert.equal(await commits.commit(work('held')), 'held');
    assert.deepEqual(transactions, [1, 1]);
    release();
    release(); // twice: counted once
    void commits.commit(work('after'));
    assert.deepEqual(transactions, [1, 1]);
    mock.timers.tick(20);
    assert.deepEqual(transactions, [1, 1, 1]);
  });

  it('a commit a client waits for goes at once, with those waiting; the next one waits again', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 20);
    const waiting = commits.commit(work('waiting'));
    assert.equal(await commits.commit(work('answered'), true), 'answered');
    assert.equal(await waiting, 'waiting');
    assert.deepEqual(transactions, [2]);
    void commits.commit(work('later'));
    assert.deepEqual(transactions, [2], 'the next one waits for the delay');
    mock.timers.tick(20);
    assert.deepEqual(transactions, [2, 1]);
  });

  it('rejects only the commit whose work threw; a failed transaction rejects every commit in it', async () => {
    let failing: Error | undefined;
    const { run, work } = runner(() => failing);
    const commits = new GatheredCommits(run, 20);
    const good = commits.commit(work('ok'));
    const bad = commits.commit(() => {
      throw new Error('this one');
    });
    mock.timers.tick(20);
    assert.equal(await good, 'ok');
    await assert.rejects(bad, /this one/);
    failing = new Error('disk full');
    const a = commits.commit(work(1));
    const b = commits.commit(work(2));
    mock.timers.tick(20);
    await assert.rejects(a, /disk full/);
    await assert.rejects(b, /disk full/);
  });

  it('flush runs what waits now (a closing store)', async () => {
    const { run, transactions, work } = runner();
    const commits = new GatheredCommits(run, 20);
    const waiting = commits.commit(work('last'));
    await commits.flush();
    assert.equal(await waiting, 'last');
    assert.deepEqual(transactions, [1]);
    await turn();
    mock.timers.tick(20);
    assert.deepEqual(transactions, [1], 'the timer it cleared runs nothing');
  });
});
