/**
 * The `fleet` section: the optional purge bus and shared configuration on NATS JetStream
 * (docs/tiers.md, Fleet). Off while `fleet.nats.servers` is empty: purges then go through the
 * local purge log and the direct peers of `purge.peers` only. Part of the one configuration
 * schema (schema.ts).
 */
import { accessSync, constants } from 'node:fs';
import { z } from 'zod';
import { durationField, sizeField } from './fields.ts';

const duration = (description: string, fallback: number) =>
  durationField().default(fallback).describe(description);

const bytes = (description: string, fallback: number) => sizeField().default(fallback).describe(description);

/** A JetStream name (stream, consumer, bucket): no dots, wildcards or spaces. */
const name = (description: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, dash and underscore, at most 64')
    .describe(description);

const natsUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      if (['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol)) return url.hostname !== '';
      return /^[^/]+:\d+$/.test(value);
    } catch {
      return /^[^/:]+:\d+$/.test(value);
    }
  },
  { message: 'expected a NATS server URL, e.g. nats://10.0.0.9:4222' },
);

export const fleetNatsSchema = z
  .strictObject({
    servers: z
      .array(natsUrl)
      .default([])
      .describe(
        'NATS servers (with JetStream) of the fleet; empty: no bus, purges use the local purge log and purge.peers only.',
      ),
    token: z.string().min(1).optional().describe('Token authentication.'),
    user: z.string().min(1).optional().describe('User name (with password).'),
    password: z.string().min(1).optional().describe('Password of user.'),
    credentials: z
      .string()
      .min(1)
      .optional()
      .describe('A NATS credentials file (JWT and NKey seed, as `nsc` writes them).'),
    tls: z
      .strictObject({
        ca: z
          .string()
          .min(1)
          .optional()
          .describe('PEM file of the CA that signed the servers’ certificates.'),
        cert: z.string().min(1).optional().describe('PEM client certificate (mutual TLS).'),
        key: z.string().min(1).optional().describe('PEM private key of the client certificate.'),
      })
      .optional()
      .describe('Connect with TLS (required when the servers require it).'),
  })
  .refine((nats) => (nats.user === undefined) === (nats.password === undefined), {
    message: 'user and password go together',
    path: ['password'],
  })
  .superRefine((nats, ctx) => {
    // Read when the node connects: a missing file would stop `serve` after check-config said valid.
    const files: [string | undefined, (string | number)[]][] = [
      [nats.credentials, ['credentials']],
      [nats.tls?.ca, ['tls', 'ca']],
      [nats.tls?.cert, ['tls', 'cert']],
      [nats.tls?.key, ['tls', 'key']],
    ];
    for (const [file, path] of files) {
      const problem = file === undefined ? undefined : unreadable(file);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path, message: problem });
    }
  })
  .prefault({});

/** Why a file cannot be read, or undefined when it can. */
function unreadable(file: string): string | undefined {
  try {
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file} (${code})`;
  }
}

export const fleetSchema = z
  .strictObject({
    nats: fleetNatsSchema.describe('How the node reaches the NATS servers.'),
    node: name(
      "This node's name on the bus: its durable consumer's name. Unique in the fleet. Default: tiers.id (dots as underscores), else the cache's persisted node id.",
    ).optional(),
    stream: name('JetStream stream holding every purge of the fleet (created if missing).').default(
      'STRATA_PURGES',
    ),
    subject: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated tokens, no wildcards')
      .default('strata.purges')
      .describe('Subject the purges are published on (the stream is created with this one subject).'),
    retention: z
      .strictObject({
        maxAge: duration(
          'Purges older than this leave the stream (a node down longer misses them).',
          7 * 86_400_000,
        ),
        maxMessages: z
          .number()
          .int()
          .min(1000)
          .max(1_000_000_000)
          .default(1_000_000)
          .describe('Most purges the stream keeps (oldest removed first).'),
        maxBytes: bytes('Most bytes the stream keeps (oldest removed first).', 1024 ** 3),
        duplicateWindow: duration(
          'A purge published twice with the same id within this window is stored once (JetStream deduplication).',
          120_000,
        ),
      })
      .refine((retention) => retention.duplicateWindow <= retention.maxAge, {
        message: 'must not exceed retention.maxAge (JetStream refuses to create such a stream)',
        path: ['duplicateWindow'],
      })
      .prefault({})
      .describe('Limits the stream is created with (an existing stream keeps its own).'),
    readiness: z
      .strictObject({
        catchUpTimeout: duration(
          'At startup /readyz answers 503 until the node has applied every purge the stream held; past this time (the bus unreachable, a long replay) it reports ready anyway, with a warning.',
          30_000,
        ),
      })
      .prefault({}),
    presence: z
      .strictObject({
        bucket: name(
          'JetStream key-value bucket where each node holds its fleet.node while it runs (created if missing): a second live node under the same name does not consume the purge stream.',
        ).default('STRATA_NODES'),
        interval: durationField()
          .refine((ms) => ms >= 100 && ms <= 60_000, { message: 'must be from 100ms to 60s' })
          .default(5000)
          .describe(
            'How often a node refreshes its name in the presence bucket. A name not refreshed for 3 intervals is taken by the next node started under it.',
          ),
      })
      .prefault({})
      .describe('One live node per fleet.node (docs/tiers.md, Fleet).'),
    config: z
      .strictObject({
        bucket: name('JetStream key-value bucket of the shared configuration (created if missing).').default(
          'STRATA_CONFIG',
        ),
        key: z
          .string()
          .regex(/^[A-Za-z0-9_=-]+(\.[A-Za-z0-9_=-]+)*$/, 'letters, digits, dash, underscore, = and dots')
          .describe(
            'Key this node watches (one per role, e.g. edges and shields): YAML or JSON with sites, origins and geo, applied like a SIGHUP reload.',
          ),
      })
      .optional()
      .describe('Shared configuration: watch a key of a KV bucket and apply what is put there.'),
  })
  .superRefine((fleet, ctx) => {
    if (fleet.nats.servers.length > 0) return;
    // Without servers there is no bus: settings of the bus would silently do nothing.
    for (const key of ['config', 'node'] as const) {
      if (fleet[key] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'needs fleet.nats.servers (without servers there is no bus and this does nothing)',
        });
    }
  })
  .prefault({});

export type FleetConfig = z.output<typeof fleetSchema>;
