/**
 * Renders the configuration reference (docs/configuration.md's key table) from the
 * schema itself, so the two cannot drift: a test compares them.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  const?: unknown;
}

const SAMPLE = {
  origins: [{ name: 'o', url: 'http://127.0.0.1:1' }],
  sites: [{ name: 's', hosts: ['*'], origins: ['o'] }],
};

function typeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' \\| ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (Array.isArray(schema.type))
    return schema.type.includes('string') ? 'number or string with unit' : schema.type.join(' \\| ');
  if (schema.type === 'array') return `list of ${schema.items ? typeOf(schema.items) : 'values'}`;
  return schema.type ?? 'value';
}

function valueAt(root: unknown, path: string[]): unknown {
  let value: unknown = root;
  for (const part of path) {
    if (value === undefined || value === null) return undefined;
    value = part === '[]' ? (value as unknown[])[0] : (value as Record<string, unknown>)[part];
  }
  return value;
}

export function configReferenceRows(): string[] {
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const defaults = configSchema.parse(SAMPLE);
  const rows: string[] = [];
  const walk = (schema: JsonSchema, path: string[], required: boolean) => {
    if (schema.properties) {
      for (const [name, child] of Object.entries(schema.properties)) walk(child, [...path, name], required);
      return;
    }
    if (schema.type === 'array' && schema.items?.properties) {
      rows.push(row(path, schema, defaults, false));
      walk(schema.items, [...path, '[]'], true);
      return;
    }
    rows.push(row(path, schema, defaults, required && !('default' in schema)));
  };
  walk(json, [], false);
  return rows;
}

/** Keys the sample has to give for the schema to parse: required ones. */
function inSample(path: string[]): boolean {
  return valueAt(SAMPLE, path) !== undefined;
}

function row(path: string[], schema: JsonSchema, defaults: unknown, _required: boolean): string {
  const key = path.join('.').replaceAll('.[]', '[]');
  const top = path.length === 1 && path[0] !== undefined && path[0] in SAMPLE;
  const value = top ? [] : inSample(path) ? undefined : valueAt(defaults, path);
  const shown =
    inSample(path) && !top ? 'required' : value === undefined ? '—' : `\`${JSON.stringify(value)}\``;
  return `| \`${key}\` | ${typeOf(schema)} | ${shown} | ${schema.description ?? ''} |`;
}

export function configReferenceTable(): string {
  return ['| key | type | default | meaning |', '| --- | --- | --- | --- |', ...configReferenceRows()].join(
    '\n',
  );
}

/** `node src/config/reference.ts` rewrites the generated block of docs/configuration.md. */
export async function writeReference(file: string): Promise<void> {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const doc = readFileSync(file, 'utf8');
  const updated = doc.replace(
    /(<!-- config-reference:start -->\n)[\s\S]*?(\n<!-- config-reference:end -->)/,
    `$1${configReferenceTable()}$2`,
  );
  writeFileSync(file, updated);
}

if (import.meta.main) await writeReference(new URL('../../docs/configuration.md', import.meta.url).pathname);
