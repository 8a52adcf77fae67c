/**
 * Compresses stored identity bodies into the codings the node serves. node:zlib's callback
 * APIs run in the libuv thread pool, so the event loop only hands the bytes over; the number
 * of compressions waiting or running is bounded, and so are the bytes they hold (each holds its
 * whole input, and its output as it grows): past either bound the caller serves identity.
 * Counts every compression and the bytes it saved, per coding, for /metrics and /stats.
 */
import {
  brotliCompress,
  brotliDecompress,
  constants,
  gunzip,
  gzip,
  type InputType,
  inflate,
  zstdCompress,
  zstdDecompress,
} from 'node:zlib';
import type { ContentCoding } from '../cache/policy/accept-encoding.ts';

export interface EncoderLevels {
  gzip: number;
  br: number;
  zstd: number;
}

export interface EncoderStats {
  compressions: Record<ContentCoding, number>;
  bytesSaved: Record<ContentCoding, number>;
  refused: number;
}

type Compress = (
  body: InputType,
  levels: EncoderLevels,
  done: (error: Error | null, out: Buffer) => void,
) => void;

const COMPRESS: Record<ContentCoding, Compress> = {
  gzip: (body, levels, done) => gzip(body, { level: levels.gzip }, done),
  br: (body, levels, done) =>
    brotliCompress(
      body,
      {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: levels.br,
          [constants.BROTLI_PARAM_SIZE_HINT]: Buffer.isBuffer(body) ? body.length : 0,
        },
      },
      done,
    ),
  zstd: (body, levels, done) =>
    zstdCompress(body, { params: { [constants.ZSTD_c_compressionLevel]: levels.zstd } }, done),
};

type Decompress = (
  body: InputType,
  options: { maxOutputLength: number },
  done: (error: Error | null, out: Buffer) => void,
) => void;

/** The codings a stored origin-encoded body may be decoded from (RFC 9110 §8.4.1; x-gzip is gzip). */
const DECOMPRESS: Record<string, Decompress> = {
  gzip: gunzip,
  'x-gzip': gunzip,
  deflate: inflate,
  br: brotliDecompress,
  zstd: zstdDecompress,
};

/** Told of every finished compression and of the queue length when it changes (metrics). */
export interface EncoderObserver {
  compressed(coding: ContentCoding, saved: number): void;
  queue(pending: number): void;
}

export class Encoder {
  readonly #levels: EncoderLevels;
  readonly #limit: number;
  readonly #observer: EncoderObserver | undefined;
  readonly #maxBytes: number;
  #pending = 0;
  #pendingBytes = 0;
  readonly stats: EncoderStats = {
    compressions: { zstd: 0, br: 0, gzip: 0 },
    bytesSaved: { zstd: 0, br: 0, gzip: 0 },
    refused: 0,
  };

  /** `maxBytes`: input bytes held at once by the work waiting or running (one body always fits). */
  constructor(levels: EncoderLevels, limit: number, observer?: EncoderObserver, maxBytes = Infinity) {
    this.#levels = levels;
    this.#limit = limit;
    this.#observer = observer;
    this.#maxBytes = maxBytes;
  }

  /** Compressions waiting or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Whether work on a body of `size` bytes would be taken now (ask before reading the body). */
  admits(size: number): boolean {
    if (this.#pending >= this.#limit) return false;
    return this.#pendingBytes === 0 || this.#pendingBytes + size <= this.#maxBytes;
  }

  /** Runs `work` on `body` counted in the queue; its callback ends the count. */
  #run(body: Buffer, work: (done: () => void) => void): void {
    this.#pending++;
    this.#pendingBytes += body.length;
    this.#observer?.queue(this.#pending);
    work(() => {
      this.#pending--;
      this.#pendingBytes -= body.length;
      this.#observer?.queue(this.#pending);
    });
  }

  /**
   * The decoded body of a stored origin-encoded one, in the same bounded queue: undefined when
   * the queue is full or the coding unknown. Rejects when the bytes do not decode or decode to
   * more than `maxOutputLength` bytes (a body that expands without bound is not kept).
   */
  decode(coding: string, body: Buffer, maxOutputLength: number): Promise<Buffer> | undefined {
    const decompress = DECOMPRESS[coding];
    if (decompress === undefined || !this.admits(body.length)) return undefined;
    return new Promise<Buffer>((resolve, reject) => {
      this.#run(body, (done) =>
        decompress(body, { maxOutputLength }, (error, out) => {
          done();
          if (error) reject(error);
          else resolve(out);
        }),
      );
    });
  }

  /**
   * The compressed body (at `levels`, by default the node's), or undefined when the queue is
   * full (the caller serves identity).
   */
  encode(
    coding: ContentCoding,
    body: Buffer,
    levels: EncoderLevels = this.#levels,
  ): Promise<Buffer> | undefined {
    if (!this.admits(body.length)) {
      this.stats.refused++;
      return undefined;
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.#run(body, (done) =>
        COMPRESS[coding](body, levels, (error, out) => {
          done();
          if (error) return reject(error);
          this.stats.compressions[coding]++;
          this.stats.bytesSaved[coding] += body.length - out.length;
          this.#observer?.compressed(coding, body.length - out.length);
          resolve(out);
        }),
      );
    });
  }
}
