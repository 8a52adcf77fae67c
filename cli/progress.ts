/**
 * The progress line of a long purge, on stderr: redrawn in place on a terminal, one plain line
 * per update when asked for elsewhere (--progress into a file or pipe), nothing otherwise.
 */
import type { PurgeProgress } from '../src/index.ts';

export type ProgressMode = 'tty' | 'lines' | 'off';

/** --progress forces it, --no-progress silences it; by default only a terminal gets it. */
export function progressMode(flag: boolean | undefined, stream: NodeJS.WriteStream): ProgressMode {
  if (flag === false) return 'off';
  if (stream.isTTY) return 'tty';
  return flag === true ? 'lines' : 'off';
}

/**
 * Made on first use: an Intl formatter reads ICU's locale data (about 6 MiB resident), which a
 * `strata serve` process, loading this file with the rest of the CLI, never needs.
 */
let formatter: Intl.NumberFormat | undefined;

/** `45,000/100,000 visited (45%), 44,990 purged, 9,800/s, 4.6 s` */
export function formatProgress(progress: PurgeProgress): string {
  formatter ??= new Intl.NumberFormat('en-US');
  const number = formatter;
  const { visited, total, purged, elapsedMs } = progress;
  const share = total > 0 ? ` (${Math.min(100, Math.floor((visited / total) * 100))}%)` : '';
  const rate = elapsedMs > 0 ? Math.round((visited / elapsedMs) * 1000) : 0;
  return (
    `${number.format(visited)}/${number.format(total)} visited${share}, ${number.format(purged)} purged, ` +
    `${number.format(rate)}/s, ${(elapsedMs / 1000).toFixed(1)} s`
  );
}

export class ProgressLine {
  readonly #stream: NodeJS.WriteStream;
  readonly #mode: ProgressMode;
  readonly #label: string;
  #drawn = false;
  #last = Number.NEGATIVE_INFINITY;

  constructor(stream: NodeJS.WriteStream, mode: ProgressMode, label: string) {
    this.#stream = stream;
    this.#mode = mode;
    this.#label = label;
  }

  get active(): boolean {
    return this.#mode !== 'off';
  }

  /** Shows `progress` (at most every 100 ms on a terminal, 250 ms as lines). */
  update(progress: PurgeProgress): void {
    if (this.#mode === 'off') return;
    const now = performance.now();
    if (now - this.#last < (this.#mode === 'tty' ? 100 : 250)) return;
    this.#last = now;
    const text = `${this.#label}: ${formatProgress(progress)}`;
    if (this.#mode === 'tty') {
      this.#stream.write(`\r\u001b[2K${text}`);
      this.#drawn = true;
    } else this.#stream.write(`${text}\n`);
  }

  /** Clears the line on a terminal (the answer follows on stdout). */
  done(): void {
    if (this.#drawn) this.#stream.write('\r\u001b[2K');
    this.#drawn = false;
  }
}
