import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatProgress, ProgressLine, progressMode } from '../../../cli/progress.ts';

/** A stderr stand-in that records what is written. */
function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const fake = {
    isTTY,
    text: '',
    write(chunk: string) {
      fake.text += chunk;
      return true;
    },
  };
  return fake as unknown as NodeJS.WriteStream & { text: string };
}

describe('the purge progress line', () => {
  it('formats counts, share, rate and time', () => {
    assert.equal(
      formatProgress({ visited: 45_000, total: 100_000, purged: 44_990, elapsedMs: 4600 }),
      '45,000/100,000 visited (45%), 44,990 purged, 9,783/s, 4.6 s',
    );
    assert.equal(
      formatProgress({ visited: 0, total: 0, purged: 0, elapsedMs: 0 }),
      '0/0 visited, 0 purged, 0/s, 0.0 s',
    );
  });

  it('is redrawn in place on a terminal, plain lines when forced elsewhere, silent otherwise', () => {
    assert.equal(progressMode(undefined, stream(true)), 'tty');
    assert.equal(progressMode(undefined, stream(false)), 'off');
    assert.equal(progressMode(true, stream(false)), 'lines');
    assert.equal(progressMode(false, stream(true)), 'off');

    const tty = stream(true);
    const line = new ProgressLine(tty, 'tty', 'purging');
    line.update({ visited: 10, total: 20, purged: 10, elapsedMs: 1000 });
    line.update({ visited: 11, total: 20, purged: 11, elapsedMs: 1001 });
    line.done();
    assert.equal(tty.text, '\r\u001b[2Kpurging: 10/20 visited (50%), 10 purged, 10/s, 1.0 s\r\u001b[2K');

    const plain = stream(false);
    const lines = new ProgressLine(plain, 'lines', 'purging');
    lines.update({ visited: 1, total: 2, purged: 1, elapsedMs: 500 });
    lines.done();
    assert.equal(plain.text, 'purging: 1/2 visited (50%), 1 purged, 2/s, 0.5 s\n');

    const off = stream(false);
    new ProgressLine(off, 'off', 'purging').update({ visited: 1, total: 2, purged: 1, elapsedMs: 500 });
    assert.equal(off.text, '');
  });
});
