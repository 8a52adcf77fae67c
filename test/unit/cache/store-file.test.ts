import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { dataFileProblem } from '../../../src/cache/store-file.ts';

const root = mkdtempSync(join(tmpdir(), 'strata-store-file-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A real LMDB data file with some records and large values (overflow pages). */
async function dataFile(name: string): Promise<string> {
  const dir = join(root, name);
  const env = open({ path: dir, pageSize: 4096 });
  for (let i = 0; i < 200; i++)
    await env.put(`key/${i}/${'x'.repeat(100)}`, i % 10 === 0 ? Buffer.alloc(300_000, i) : `value ${i}`);
  await env.close();
  return join(dir, 'data.mdb');
}

/** Sets the last-page field of both meta pages, as a commit that allocated past the written end leaves it. */
function setLastPage(file: string, add: number): void {
  const bytes = readFileSync(file);
  for (const at of [0, 4096]) {
    const field = at + 24 + 120;
    bytes.writeBigUInt64LE(bytes.readBigUInt64LE(field) + BigInt(add), field);
  }
  writeFileSync(file, bytes);
}

describe('dataFileProblem', () => {
  it('takes a sound file whose last allocated pages were never written (a purge of everything, then a stop)', async () => {
    const file = await dataFile('unwritten-tail');
    assert.equal(dataFileProblem(file), undefined);
    setLastPage(file, 1);
    assert.equal(dataFileProblem(file), undefined, 'one page short');
    setLastPage(file, 200);
    assert.equal(
      dataFileProblem(file),
      undefined,
      'an overflow chunk allocated and freed in the last commit',
    );
  });

  it('refuses a file cut before its root pages', async () => {
    const file = await dataFile('cut');
    truncateSync(file, Math.floor(statSync(file).size / 3));
    assert.match(String(dataFileProblem(file)), /root page ends at byte \d+ \(truncated\)/);
  });
});
