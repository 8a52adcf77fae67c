/**
 * Decoding an origin-encoded body as it streams (node:zlib, whose stream work runs in the
 * libuv thread pool): for a fill whose origin sent a content coding the request's
 * Accept-Encoding bucket did not ask for, so that every client of the bucket can read it.
 */
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib';

/** The codings the node decodes (RFC 9110 §8.4.1; `x-gzip` is gzip). */
const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: createZstdDecompress,
};

/** The single coding named by a Content-Encoding value, lower case; undefined for none or a stack. */
export function singleCoding(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const codings = (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  return codings.length === 1 ? codings[0] : undefined;
}

/** Whether the node can decode this coding. */
export function decodable(coding: string): boolean {
  return Object.hasOwn(DECODERS, coding);
}

/**
 * The decoded stream of `body`. An error of either side (the origin's body cut short, bytes
 * that do not decode) ends the decoded stream with that error, so a fill sees it as a body
 * cut short and stores nothing.
 */
export function decodeStream(coding: string, body: Readable): Readable {
  const decoder = DECODERS[coding]!();
  body.on('error', (error) => decoder.destroy(error));
  body.on('close', () => {
    if (!body.readableEnded) decoder.destroy(new Error('origin body closed before its end'));
  });
  decoder.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return body.pipe(decoder);
}

/** A decoder of `coding` alone (decodable(coding) must hold): for reading a copy of a coded body. */
export function decoderOf(coding: string): Transform {
  return DECODERS[coding]!();
}
