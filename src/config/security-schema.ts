/**
 * The per-site `security` section: rate limits (all requests, and origin-bound ones only),
 * address and country rules, request filters and limits, and the store-side guards against
 * cache poisoning and deception. Part of the one configuration schema (schema.ts).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { sizeField } from './fields.ts';

/** `10.0.0.0/8`, `fd00::/8`, or a single address. */
export function isCidr(value: string): boolean {
  const [address = '', prefix, extra] = value.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const cidrList = (description: string) =>
  z
    .array(
      z
        .string()
        .refine(isCidr, { message: 'expected an IP address or CIDR range, e.g. 10.0.0.0/8 or fd00::/8' }),
    )
    .default([])
    .describe(description);

const bytes = (description: string, fallback: number) => sizeField().default(fallback).describe(description);

const by = z
  .string()
  .regex(/^(client|site|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/, 'expected client, site or header:NAME')
  .default('client')
  .describe(
    'What a bucket is kept per: client (the peer address; IPv6 by /64), site (one bucket for the site), or header:NAME (the value of a request header such as an API key; the client address when absent).',
  );

const bucket = (what: string) =>
  z.strictObject({
    requestsPerSecond: z
      .number()
      .positive()
      .max(1_000_000)
      .describe(
        `Sustained rate of ${what.toLowerCase()} allowed per key, per second (GCRA: one every 1/rate seconds).`,
      ),
    burst: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(`${what} a key may send at once (the bucket size); default: one second's worth.`),
    by,
  });

const countryCode = z
  .string()
  .regex(/^[A-Za-z0-9-]{2,8}$/, 'expected a country or region code, e.g. DE, US, EU')
  .transform((code) => code.toUpperCase());

export const securitySchema = z
  .strictObject({
    rateLimit: bucket('Requests')
      .optional()
      .describe('Limit on all requests to the site (hits included); past it: 429 with Retry-After.'),
    originLimit: bucket('Origin-bound requests')
      .optional()
      .describe(
        'Limit on the requests that would reach the origin (misses, passes, revalidations, client no-cache); past it those are answered 429 while hits are still served.',
      ),
    allow: cidrList(
      'Networks always admitted: exempt from deny, country rules and rate limits (trusted proxies are exempt from rate limits too).',
    ),
    deny: cidrList(
      'Networks refused with 403 (unless listed in allow); 0.0.0.0/0 and ::/0 deny everyone else.',
    ),
    countries: z
      .strictObject({
        allow: z
          .array(countryCode)
          .optional()
          .describe('Only clients located in these countries or regions are admitted.'),
        deny: z
          .array(countryCode)
          .optional()
          .describe('Clients located in these countries or regions are refused 403.'),
        unknown: z
          .enum(['allow', 'deny'])
          .optional()
          .describe(
            'What happens to an address the lookup cannot place; default: deny with an allow list, allow with a deny list.',
          ),
      })
      .refine((rules) => (rules.allow === undefined) !== (rules.deny === undefined), {
        message: 'give either allow or deny',
      })
      .optional()
      .describe('Country or region rules, through the node’s GeoIP lookup.'),
    block: z
      .array(
        z
          .strictObject({
            path: z.string().startsWith('/').optional().describe('Path prefix the rule matches.'),
            pathPattern: z
              .string()
              .refine(
                (value) => {
                  try {
                    new RegExp(value);
                    return true;
                  } catch {
                    return false;
                  }
                },
                { message: 'not a valid regular expression' },
              )
              .optional()
              .describe('Regular expression the path (with query) must match.'),
            methods: z
              .array(z.string().regex(/^[A-Z]+$/))
              .optional()
              .describe('Methods the rule matches (GET matches HEAD too: a HEAD miss is filled with a GET).'),
            contentTypes: z
              .array(z.string().transform((value) => value.toLowerCase()))
              .optional()
              .describe('Request Content-Type media types the rule matches.'),
          })
          // A rule of no condition matches every request: the whole site refused 403.
          .refine(
            (rule) =>
              rule.path !== undefined ||
              rule.pathPattern !== undefined ||
              rule.methods !== undefined ||
              rule.contentTypes !== undefined,
            {
              message:
                'give at least one of path, pathPattern, methods, contentTypes (an empty rule refuses every request)',
            },
          ),
      )
      .default([])
      .describe('Requests refused 403: each rule matches when all of its given conditions do.'),
    limits: z
      .strictObject({
        maxUrlLength: z
          .number()
          .int()
          .min(16)
          .max(1_000_000)
          .default(8192)
          .describe('Longest request target; longer: 414.'),
        maxHeaders: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(100)
          .describe('Most request header fields; more: 431.'),
        maxHeaderBytes: bytes('Largest request header section (names and values); larger: 431.', 16 * 1024),
        maxBodySize: bytes(
          'Largest request body: a Content-Length over it is answered 413 before the body is read; a chunked body is cut with 413 as it grows past it; the connection is closed.',
          16 * 1024 ** 2,
        ),
      })
      .prefault({})
      .describe('Request limits of the site.'),
    refuseAmbiguousPaths: z
      .boolean()
      .default(false)
      .describe(
        'Refuse (400) paths a cache and an origin may read differently: a ; delimiter, encoded slash, backslash, dot or NUL (%2F, %5C, %2E, %00), a backslash, or an empty segment (//).',
      ),
    poisonCheck: z
      .boolean()
      .default(true)
      .describe(
        'On a miss whose request carries unkeyed, non-default header values, a response reflecting one of them (headers, first 64 KiB of body) is not stored (detail=poison-suspect).',
      ),
    poisonIgnore: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header field name')
          .transform((name) => name.toLowerCase()),
      )
      .default([])
      .describe(
        'Request header fields the poisoning check leaves out (values the origin reflects harmlessly, e.g. an API client id echoed back); tracing ids are left out already.',
      ),
    deceptionCheck: z
      .boolean()
      .default(true)
      .describe(
        'A response whose Content-Type disagrees with the static extension of its path (/account/x.css answered text/html) is not stored (detail=deception).',
      ),
  })
  .prefault({});

export type SecurityConfig = z.output<typeof securitySchema>;
