/** Keeps docs/errors.md and the ERROR_CODES table in sync, and checks what EdgeError carries. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { EdgeError, ERROR_CODES, type ErrorCode, isEdgeError } from '../../src/errors.ts';

interface DocumentedError {
  code: string;
  status: number;
  source: string;
  retryable: boolean;
  proxyStatus: string | undefined;
  description: string;
}

/** The rows of the code table in docs/errors.md. */
function documentedErrors(): DocumentedError[] {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows: DocumentedError[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `EDGE_ERR_')) continue;
    const cells = line
      .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
      .split(' | ')
      .map((cell) => cell.trim());
    assert.equal(cells.length, 6, `a row of docs/errors.md has ${cells.length} cells: ${line}`);
    const [code, status, source, retryable, proxyStatus, description] = cells as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    assert.match(retryable, /^(yes|no)$/, line);
    rows.push({
      code: code.replace(/`/g, ''),
      status: Number(status),
      source,
      retryable: retryable === 'yes',
      proxyStatus: proxyStatus === '—' ? undefined : proxyStatus.replace(/`/g, ''),
      description,
    });
  }
  return rows;
}

const table = Object.entries(ERROR_CODES).map(([code, spec]) => ({
  code,
  status: spec.status,
  source: spec.source,
  retryable: spec.retryable,
  proxyStatus: 'proxyStatus' in spec ? spec.proxyStatus : undefined,
  description: spec.description,
}));

describe('docs/errors.md', () => {
  const documented = documentedErrors();

  it('documents every code of ERROR_CODES, and no other', () => {
    assert.deepEqual(documented.map((row) => row.code).sort(), Object.keys(ERROR_CODES).sort());
  });

  it('lists each code once', () => {
    const codes = documented.map((row) => row.code);
    assert.equal(new Set(codes).size, codes.length);
  });

  it('agrees with ERROR_CODES on status, source, retryable, Proxy-Status and description', () => {
    const byCode = new Map(documented.map((row) => [row.code, row]));
    for (const spec of table) assert.deepEqual(byCode.get(spec.code), spec, spec.code);
  });
});

describe('ERROR_CODES', () => {
  it('names every code EDGE_ERR_<AREA>_<WHAT>', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^EDGE_ERR_[A-Z]+(_[A-Z]+)*$/);
  });

  it('gives client errors a 4xx status and origin errors a 5xx status', () => {
    for (const spec of table) {
      if (spec.source === 'origin') assert.ok(spec.status >= 500 && spec.status < 600, spec.code);
      if (spec.source === 'client') assert.ok(spec.status >= 400 && spec.status < 600, spec.code);
    }
  });

  it('gives every origin error a Proxy-Status error type (RFC 9209)', () => {
    for (const spec of table.filter((row) => row.source === 'origin')) {
      assert.match(spec.proxyStatus ?? '', /^[a-z_]+$/, spec.code);
    }
  });
});

describe('EdgeError', () => {
  it('carries the code, source, status, retryable, Proxy-Status and cause of its table row', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new EdgeError('EDGE_ERR_ORIGIN_CONNECT', 'cannot connect', { cause });
    assert.ok(error instanceof Error);
    assert.ok(isEdgeError(error));
    assert.equal(error.name, 'EdgeError');
    assert.equal(error.message, 'cannot connect');
    assert.equal(error.code, 'EDGE_ERR_ORIGIN_CONNECT');
    assert.equal(error.source, 'origin');
    assert.equal(error.status, 502);
    assert.equal(error.retryable, true);
    assert.equal(error.proxyStatus, 'connection_refused');
    assert.equal(error.cause, cause);
  });

  it('has no Proxy-Status for codes without one', () => {
    const code: ErrorCode = 'EDGE_ERR_CLIENT_BAD_REQUEST';
    assert.equal(new EdgeError(code, 'bad').proxyStatus, undefined);
  });

  it('isEdgeError refuses other errors', () => {
    assert.equal(isEdgeError(new Error('x')), false);
    assert.equal(isEdgeError({ code: 'EDGE_ERR_INTERNAL' }), false);
  });
});
