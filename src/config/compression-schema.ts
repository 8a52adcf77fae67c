/**
 * The `compression` section (docs/compression.md): which codings the node stores beside the
 * identity body of a compressible response, from what size, at which levels. Part of the one
 * configuration schema (schema.ts); a site may turn it off or opt private answers in.
 */
import { z } from 'zod';
import { sizeField } from './fields.ts';

const CODINGS = ['zstd', 'br', 'gzip'] as const;

const encodings = z
  .array(z.enum(CODINGS))
  .min(1)
  .refine((list) => new Set(list).size === list.length, { message: 'an encoding is listed twice' });

const size = sizeField();

const types = z.array(
  z
    .string()
    .regex(
      /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+*-]+$/,
      'expected a lower-case media type, e.g. text/x-log or application/vnd.*+json (* only in the subtype)',
    ),
);

const LEVELS = {
  gzip: { min: 1, max: 9, default: 1, what: 'gzip level (1–9).' },
  br: { min: 0, max: 11, default: 1, what: 'Brotli quality (0–11).' },
  zstd: { min: 1, max: 19, default: 3, what: 'zstd level (1–19).' },
} as const;

const level = (coding: keyof typeof LEVELS) =>
  z.number().int().min(LEVELS[coding].min).max(LEVELS[coding].max).describe(LEVELS[coding].what);

export const compressionSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Store compressed representations of compressible responses and negotiate them.'),
    encodings: encodings
      .default([...CODINGS])
      .describe(
        "Codings produced, in the server's order of preference when a client weighs several equally.",
      ),
    minSize: size
      .default(1024)
      .describe('Smallest identity body compressed (bytes); smaller ones are stored and sent as they are.'),
    types: types
      .default([])
      .describe(
        'Media types compressed besides those the mime-db database marks compressible (text/* always is), even one it marks not compressible; * in a subtype stands for any characters (font/*, application/vnd.*+json).',
      ),
    levels: z
      .strictObject({
        gzip: level('gzip').default(LEVELS.gzip.default),
        br: level('br').default(LEVELS.br.default),
        zstd: level('zstd').default(LEVELS.zstd.default),
      })
      .prefault({})
      .describe('Compression levels: fast settings by default, as a compression runs once per object.'),
    queue: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(64)
      .describe(
        'Compressions waiting or running at once (in the libuv pool), together holding at most cache.maxObjectSize bytes of bodies; past either bound a request gets the identity body.',
      ),
  })
  .prefault({});

/**
 * Per-site override: off for a site, answers to personal requests opted in (BREACH:
 * docs/compression.md), and any of the node's encodings, minSize, types and levels replaced
 * for the site's responses (levels coding by coding).
 */
export const siteCompressionSchema = z
  .strictObject({
    enabled: z.boolean().optional().describe('Compress this site (default: compression.enabled).'),
    private: z
      .boolean()
      .default(false)
      .describe(
        'Compress variants kept per client too (a response varying on the Cookie or Authorization the request carries). Off by default: a secret beside reflected input in one compressed body leaks through its length (BREACH).',
      ),
    encodings: encodings
      .optional()
      .describe('Codings produced for this site (default: compression.encodings).'),
    minSize: size
      .optional()
      .describe('Smallest body compressed for this site (default: compression.minSize).'),
    types: types
      .optional()
      .describe("Media types compressed for this site besides mime-db's (default: compression.types)."),
    levels: z
      .strictObject({
        gzip: level('gzip').optional(),
        br: level('br').optional(),
        zstd: level('zstd').optional(),
      })
      .optional()
      .describe('Compression levels for this site, each defaulting to compression.levels.'),
  })
  .prefault({});
