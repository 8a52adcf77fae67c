/**
 * Per-site error pages: the answer the node writes for an error it generates (a 502 when no
 * origin answered, a 403 from a security rule, ...) rendered from a template file instead of
 * the plain-text default. Templates are read when the sites are built (start and reload).
 * Placeholders: {status} {reason} {requestId} {code}; anything else stays as written. None of
 * them can carry an origin address: the node's error messages are not offered.
 */
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { extname } from 'node:path';

export interface ErrorPage {
  readonly contentType: string;
  readonly template: string;
}

export interface PageValues {
  status: number;
  requestId: string;
  code: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
};

/** Status → page: exact statuses ('502') before classes ('5xx'). */
export class ErrorPages {
  readonly #pages = new Map<string, ErrorPage>();

  /** `files`: '404', '5xx', ... → template file. Throws when a file cannot be read. */
  constructor(files: Readonly<Record<string, string>>) {
    for (const [status, file] of Object.entries(files)) {
      this.#pages.set(status.toLowerCase(), {
        contentType: TYPES[extname(file).toLowerCase()] ?? 'text/plain; charset=utf-8',
        template: readFileSync(file, 'utf8'),
      });
    }
  }

  get size(): number {
    return this.#pages.size;
  }

  /** The page for a status, rendered; undefined when none is configured for it. */
  render(values: PageValues): { contentType: string; body: string } | undefined {
    const page =
      this.#pages.get(String(values.status)) ?? this.#pages.get(`${Math.floor(values.status / 100)}xx`);
    if (page === undefined) return undefined;
    const fields: Record<string, string> = {
      status: String(values.status),
      reason: STATUS_CODES[values.status] ?? '',
      requestId: values.requestId,
      code: values.code,
    };
    return {
      contentType: page.contentType,
      body: page.template.replace(/\{(status|reason|requestId|code)\}/g, (_, name: string) => fields[name]!),
    };
  }
}
