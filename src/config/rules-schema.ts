/**
 * The per-site cache `rules` and `clientCacheControl`: what an operator overrides of the
 * origin's caching (TTLs, ignored fields, pass/bypass, cache key, header rewrites), matched
 * on the request in order. Part of the one configuration schema (schema.ts); compiled once
 * per site by src/edge/site-rules.ts. docs/caching.md ("Rules") explains each action.
 */
import { z } from 'zod';
import { parseDuration } from './units.ts';

/** RFC 9110 §5.1 token: a field name. */
const FIELD_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** RFC 6265 §4.1.1 cookie-name (a token). */
const COOKIE_NAME = FIELD_NAME;
/** Rule names are Cache-Status tokens (RFC 9211 detail) and log fields. */
const RULE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/** Fields a rewrite may not touch: framing and connection fields belong to the node. */
export const UNREWRITABLE: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'cache-status',
  'age',
]);

/** A TTL: a duration with a unit (`10m`, `1h`, `30s`) or a number of seconds; held in seconds. */
const ttl = (description: string) =>
  z
    .union([z.number().int().min(0).max(31_536_000_0), z.string()])
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      const ms = parseDuration(value);
      if (ms === undefined || !/[a-z]\s*$/.test(value)) {
        ctx.addIssue({
          code: 'custom',
          message: `"${value}" is not a TTL (a number of seconds, or a duration with a unit: 30s, 10m, 1h, 7d)`,
        });
        return z.NEVER;
      }
      return Math.floor(ms / 1000);
    })
    .describe(description);

const fieldName = z
  .string()
  .regex(FIELD_NAME, 'expected a header field name, e.g. X-Device')
  .transform((name) => name.toLowerCase());
const cookieName = z.string().regex(COOKIE_NAME, 'expected a cookie name, e.g. session');

/** Path patterns: `/static/` (prefix), `/img/*.png` (glob, `*` any characters), `~^/v[0-9]+/` (regex). */
const pathPattern = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    if (value.startsWith('~')) {
      try {
        new RegExp(value.slice(1));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(error as Error).message}` });
      }
      return;
    }
    if (!value.startsWith('/'))
      ctx.addIssue({
        code: 'custom',
        message: 'a path starts with / (a prefix or a glob with *), or with ~ (a regular expression)',
      });
  });

/** true: present, false: absent, a string: a glob the value must match (`*` any characters). */
const valueMatch = z.union([z.boolean(), z.string()]);

const presence = <T extends z.ZodType<string>>(name: T, what: string) =>
  z.union([name, z.array(name).min(1), z.record(z.string(), valueMatch)]).superRefine((value, ctx) => {
    if (typeof value === 'string' || Array.isArray(value)) return;
    for (const key of Object.keys(value)) {
      if (!FIELD_NAME.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `not a ${what} name` });
    }
  });

const oneOrMore = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);

export const ruleMatchSchema = z
  .strictObject({
    method: oneOrMore(z.string().regex(/^[A-Za-z]+$/, 'expected a method, e.g. GET'))
      .optional()
      .describe('Method, or any of a list (GET, POST, …).'),
    path: oneOrMore(pathPattern)
      .optional()
      .describe(
        'Path (query apart): prefix /static/, glob /img/*.png (* any characters), regex ~^/v[0-9]+/; or any of a list.',
      ),
    query: presence(z.string().min(1), 'query parameter')
      .optional()
      .describe(
        'Query parameter: a name (present), a list (any present), or {name: true | false | "glob"} (all hold).',
      ),
    header: presence(fieldName, 'header field')
      .optional()
      .describe(
        'Request header: a name (present), a list (any present), or {name: true | false | "glob"} (all hold).',
      ),
    cookie: presence(cookieName, 'cookie')
      .optional()
      .describe(
        'Cookie: a name (present), a list (any present), or {name: true | false | "glob"} (all hold).',
      ),
    region: oneOrMore(z.string().min(1))
      .optional()
      .describe(
        "Client region(s) from geo (networks' regions; the database's region, country code or continent).",
      ),
  })
  .describe('What a request must match: every condition given. Absent: every request.');

const statusKey = /^([1-5]\d\d|[1-5]xx)$/;

const headerEdits = z.strictObject({
  set: z.record(z.string(), z.string()).optional().describe('Fields set (replacing any value).'),
  append: z.record(z.string(), z.string()).optional().describe('Fields added (keeping any value).'),
  remove: z.array(fieldName).optional().describe('Fields removed (e.g. Server, X-Powered-By).'),
});

const cacheKeySchema = z
  .strictObject({
    query: z
      .strictObject({
        include: z.array(z.string().min(1)).optional().describe('Only these parameters (globs: utm_*).'),
        exclude: z.array(z.string().min(1)).optional().describe('Every parameter but these (globs: utm_*).'),
        sort: z
          .boolean()
          .optional()
          .describe('Sort the parameters by name (a repeated name keeps its values in the order they came).'),
        ignore: z.boolean().optional().describe('Leave the whole query out of the key.'),
      })
      .optional(),
    headers: z.array(fieldName).optional().describe('Request header values added to the key.'),
    cookies: z.array(cookieName).optional().describe('Cookie values added to the key.'),
    region: z.boolean().optional().describe("The client's region (geo) added to the key."),
  })
  .describe('The cache key: which query parameters count, and request values added to it.');

export const ruleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(RULE_NAME, 'a name starts with a letter: letters, digits, _ . : - (at most 64)')
      .optional()
      .describe('Named in Cache-Status (detail=) and the access log; default rule-N (N from 1).'),
    match: ruleMatchSchema.optional(),
    ttl: ttl('Edge TTL when the origin gives no freshness (Cache-Control, Expires).').optional(),
    statusTtl: z
      .record(z.string(), ttl('TTL'))
      .superRefine((table, ctx) => {
        for (const key of Object.keys(table)) {
          if (!statusKey.test(key))
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: 'expected a status (404) or a class (5xx)',
            });
        }
      })
      .optional()
      .describe(
        'Edge TTL per status (404) or class (5xx) when the origin gives no freshness; 0: not stored. Also lets a named status be stored (e.g. 403).',
      ),
    minTtl: ttl('Lifetime at least this long (whatever the origin says).').optional(),
    maxTtl: ttl('Lifetime at most this long (whatever the origin says).').optional(),
    swr: ttl('stale-while-revalidate window when the origin gives none (RFC 5861).').optional(),
    sie: ttl('stale-if-error window when the origin gives none (RFC 5861).').optional(),
    browserTtl: ttl(
      'Cache-Control: max-age sent to the client on responses from the cache (the edge TTL is unchanged).',
    ).optional(),
    ignore: z
      .array(z.enum(['cache-control', 'expires', 'set-cookie', 'vary']))
      .optional()
      .describe(
        'Origin fields the cache decisions ignore (like nginx proxy_ignore_headers); with set-cookie, the Set-Cookie of a response stored is removed, never delivered.',
      ),
    action: z
      .enum(['cache', 'pass', 'bypass'])
      .optional()
      .describe(
        'cache: looked up and stored as usual; pass: fetched and relayed, never looked up nor stored; bypass: never answered from cache, but the response is stored (nginx proxy_cache_bypass).',
      ),
    clientCacheControl: z
      .enum(['honor', 'ignore'])
      .optional()
      .describe("Honor or ignore the client's Cache-Control and Pragma (overrides the site's)."),
    cacheKey: cacheKeySchema.optional(),
    headers: z
      .strictObject({
        request: headerEdits.optional().describe('Rewrites of the request sent to the origin.'),
        response: headerEdits.optional().describe('Rewrites of the response sent to the client.'),
      })
      .optional()
      .describe('Header rewrites; every matching rule applies its own, in order.'),
  })
  .superRefine((rule, ctx) => {
    const { name: _name, match: _match, ...actions } = rule;
    if (Object.keys(actions).length === 0)
      ctx.addIssue({
        code: 'custom',
        message: 'a rule needs at least one action (ttl, action, cacheKey, …)',
      });
    if (rule.minTtl !== undefined && rule.maxTtl !== undefined && rule.minTtl > rule.maxTtl)
      ctx.addIssue({ code: 'custom', path: ['minTtl'], message: 'minTtl is larger than maxTtl' });
    const query = rule.cacheKey?.query;
    if (query?.include !== undefined && query.exclude !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['cacheKey', 'query'],
        message: 'give include or exclude, not both',
      });
    if (query?.ignore && (query.include !== undefined || query.exclude !== undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['cacheKey', 'query'],
        message: 'ignore leaves the whole query out: include and exclude do nothing with it',
      });
    for (const side of ['request', 'response'] as const) {
      const edits = rule.headers?.[side];
      if (edits === undefined) continue;
      for (const kind of ['set', 'append'] as const) {
        for (const [field, value] of Object.entries(edits[kind] ?? {})) {
          const path = ['headers', side, kind, field];
          if (!FIELD_NAME.test(field))
            ctx.addIssue({ code: 'custom', path, message: 'not a header field name' });
          else if (UNREWRITABLE.has(field.toLowerCase()))
            ctx.addIssue({
              code: 'custom',
              path,
              message: `${field} belongs to the node and is not rewritten`,
            });
          if (/[\r\n\0]/.test(value))
            ctx.addIssue({ code: 'custom', path, message: 'a value holds no CR, LF or NUL' });
        }
      }
      (edits.remove ?? []).forEach((field, index) => {
        if (UNREWRITABLE.has(field))
          ctx.addIssue({
            code: 'custom',
            path: ['headers', side, 'remove', index],
            message: `${field} belongs to the node and is not rewritten`,
          });
      });
    }
  });

export const rulesSchema = z
  .array(ruleSchema)
  .max(1000)
  .default([])
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((rule, index) => {
      const name = rule.name ?? `rule-${index + 1}`;
      if (seen.has(name))
        ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate rule name "${name}"` });
      seen.add(name);
    });
  })
  .describe(
    "The site's cache rules, matched in order; for each kind of action the first matching rule that sets it wins (header rewrites add up). docs/caching.md, Rules.",
  );

export const clientCacheControlSchema = z
  .enum(['honor', 'ignore'])
  .default('honor')
  .describe(
    "honor: a client's Cache-Control (no-cache, max-age=0) and Pragma: no-cache make the edge revalidate, as RFC 9111 says; ignore: they are not read (a reload cannot reach the origin), as Varnish, nginx and most CDNs do.",
  );

export type RuleConfig = z.output<typeof ruleSchema>;
export type RuleMatchConfig = z.output<typeof ruleMatchSchema>;
