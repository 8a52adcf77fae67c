/**
 * Compresses stored identity bodies into the codings the node serves. node:zlib's callback
 * APIs run in the libuv thread pool, so the event loop only hands the bytes over; the number
 * of compressions waiting or running is bounded (past it the caller serves identity).
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
  #pending = 0;
  readonly stats: EncoderStats = {
    compressions: { zstd: 0, br: 0, gzip: 0 },
    bytesSaved: { zstd: 0, br: 0, gzip: 0 },
    refused: 0,
  };

  constructor(levels: EncoderLevels, limit: number, observer?: EncoderObserver) {
    this.#levels = levels;
    this.#limit = limit;
    this.#observer = observer;
  }

  /** Compressions waiting or running. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * The decoded body of a stored origin-encoded one, in the same bounded queue: undefined when
   * the queue is full or the coding unknown. Rejects when the bytes do not decode or decode to
   * more than `maxOutputLength` bytes (a body that expands without bound is not kept).
   */
  decode(coding: string, body: Buffer, maxOutputLength: number): Promise<Buffer> | undefined {
    const decompress = DECOMPRESS[coding];
    if (decompress === undefined || this.#pending >= this.#limit) return undefined;
    this.#pending++;
    this.#observer?.queue(this.#pending);
    return new Promise<Buffer>((resolve, reject) => {
      decompress(body, { maxOutputLength }, (error, out) => {
        this.#pending--;
        this.#observer?.queue(this.#pending);
        if (error) reject(error);
        else resolve(out);
      });
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
    if (this.#pending >= this.#limit) {
      this.stats.refused++;
      return undefined;
    }
    this.#pending++;
    this.#observer?.queue(this.#pending);
    return new Promise<Buffer>((resolve, reject) => {
      COMPRESS[coding](body, levels, (error, out) => {
        this.#pending--;
        this.#observer?.queue(this.#pending);
        if (error) return reject(error);
        this.stats.compressions[coding]++;
        this.stats.bytesSaved[coding] += body.length - out.length;
        this.#observer?.compressed(coding, body.length - out.length);
        resolve(out);
      });
    });
  }
}
