import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { lowerBackgroundThreads, type ThreadAccess } from '../../src/background-threads.ts';
import { validateConfig } from '../../src/index.ts';

/** A process's threads as the test says, with the nice values set on them. */
function threads(names: Record<string, string>, processNice = 0, gone: string[] = []) {
  const set = new Map<string, number>();
  const access: ThreadAccess = {
    threads: () => Object.keys(names),
    name: (tid) => (gone.includes(tid) ? undefined : names[tid]),
    processNice: () => processNice,
    setNice: (tid, nice) => {
      set.set(tid, nice);
    },
  };
  return { access, set };
}

/** Nice value of each thread of this process, by name (Linux: field 19 of /proc/self/task/T/stat). */
function niceByThread(): Array<{ name: string; nice: number }> {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // The name, in parentheses, may hold spaces: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), nice: Number(fields[16]) };
  });
}

describe("V8's background threads below the request thread (node.backgroundNice)", () => {
  it('sets only the V8Worker threads, that many levels below the process, at most 19', () => {
    const names = { '100': 'MainThread', '101': 'V8Worker', '102': 'V8Worker', '103': 'libuv-worker' };
    const plain = threads(names);
    assert.equal(lowerBackgroundThreads(10, plain.access), 2);
    assert.deepEqual(
      [...plain.set],
      [
        ['101', 10],
        ['102', 10],
      ],
    );
    const niced = threads(names, 15);
    assert.equal(lowerBackgroundThreads(10, niced.access), 2);
    assert.deepEqual([...niced.set.values()], [19, 19]);
  });

  it('leaves every thread alone at 0, and skips a thread that ended or refuses', () => {
    const names = { '1': 'V8Worker', '2': 'V8Worker', '3': 'V8Worker' };
    const untouched = threads(names);
    assert.equal(lowerBackgroundThreads(0, untouched.access), 0);
    assert.equal(untouched.set.size, 0);
    const partly = threads(names, 0, ['2']);
    const refusing: ThreadAccess = {
      ...partly.access,
      setNice: (tid, nice) => {
        if (tid === '3') throw new Error('ESRCH');
        partly.access.setNice(tid, nice);
      },
    };
    assert.equal(lowerBackgroundThreads(5, refusing), 1);
    assert.deepEqual([...partly.set], [['1', 5]]);
    // No thread listing at all (no /proc): nothing set, no error.
    const none: ThreadAccess = {
      ...partly.access,
      threads: () => {
        throw new Error('ENOENT');
      },
    };
    assert.equal(lowerBackgroundThreads(5, none), 0);
  });

  it("lowers this process's own V8 worker threads and no other thread (Linux)", {
    skip: process.platform !== 'linux',
  }, () => {
    const before = niceByThread();
    const base = before.find((t) => t.name !== 'V8Worker')!.nice;
    assert.ok(
      before.some((t) => t.name === 'V8Worker'),
      JSON.stringify(before),
    );
    const count = lowerBackgroundThreads(3);
    const after = niceByThread();
    assert.equal(count, after.filter((t) => t.name === 'V8Worker').length);
    for (const thread of after) {
      assert.equal(thread.nice, thread.name === 'V8Worker' ? Math.min(19, base + 3) : base, thread.name);
    }
    // Again with the same levels: nothing moves further.
    lowerBackgroundThreads(3);
    assert.deepEqual(niceByThread(), after);
  });

  it('is 0 (off) unless the config says otherwise, 0 to 19, with the path of a bad value', () => {
    const base = {
      origins: [{ name: 'o', url: 'http://127.0.0.1:9' }],
      sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
    };
    const plain = validateConfig(base);
    assert.ok('config' in plain);
    assert.equal(plain.config.node.backgroundNice, 0);
    const lowered = validateConfig({ ...base, node: { backgroundNice: 10 } });
    assert.ok('config' in lowered);
    assert.equal(lowered.config.node.backgroundNice, 10);
    for (const wrong of [20, -1, 2.5, 'low']) {
      const result = validateConfig({ ...base, node: { backgroundNice: wrong } });
      assert.ok('problems' in result, String(wrong));
      assert.ok(
        result.problems.some((p) => p.path === 'node.backgroundNice'),
        JSON.stringify(result.problems),
      );
    }
  });
});
