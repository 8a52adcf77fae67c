/** What a scenario hands back, and how it is printed: one table per scenario, plus notes. */

export type Cell = string | number | null;
export type Row = Record<string, Cell>;

export type Format = 'text' | 'int' | 'ms' | 'ratio' | 'mib' | 'us' | 'seconds' | 'percent';

export interface Column {
  key: string;
  label: string;
  format: Format;
}

export interface ScenarioReport {
  name: string;
  title: string;
  columns: Column[];
  rows: Row[];
  /** Setup facts (pinning, generator), skipped targets with their reason, warnings. */
  notes: string[];
  /** Set when the scenario itself was skipped (nothing to measure). */
  skipped: string | null;
  /** Set when the scenario failed. */
  error: string | null;
}

export function emptyReport(name: string, title: string, columns: Column[]): ScenarioReport {
  return { name, title, columns, rows: [], notes: [], skipped: null, error: null };
}

export function col(key: string, label: string, format: Format = 'text'): Column {
  return { key, label, format };
}

function formatCell(value: Cell | undefined, format: Format): string {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '–';
  switch (format) {
    case 'int':
      return Math.round(value).toLocaleString('en-US');
    case 'ms':
      return value < 10 ? value.toFixed(2) : value.toFixed(1);
    case 'ratio':
      return `${value.toFixed(2)}×`;
    case 'mib':
      return value.toFixed(1);
    case 'us':
      return value.toFixed(1);
    case 'seconds':
      return value.toFixed(2);
    case 'percent':
      return `${Math.round(value * 100)}%`;
    case 'text':
      return String(value);
  }
}

/** A Markdown table: readable in a terminal and pasteable into docs/performance.md. */
export function renderTable(report: ScenarioReport): string {
  const header = report.columns.map((c) => c.label);
  const body = report.rows.map((row) => report.columns.map((c) => formatCell(row[c.key], c.format)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

export function renderReport(report: ScenarioReport): string {
  const parts = [`### ${report.name}: ${report.title}`, ''];
  if (report.skipped !== null) parts.push(`skipped: ${report.skipped}`, '');
  if (report.rows.length > 0) parts.push(renderTable(report), '');
  for (const note of report.notes) parts.push(`- ${note}`);
  if (report.error !== null) parts.push(`- FAILED: ${report.error}`);
  return `${parts.join('\n').trimEnd()}\n`;
}

/**
 * Adds a ratio column: a row's figure divided by the reference row's at the same load
 * (`invert`: the reference's divided by the row's, for costs such as CPU per request).
 */
export function addRatio(
  rows: Row[],
  options: { ref: string; key: string; as: string; sameKey?: string; invert?: boolean },
): void {
  for (const row of rows) {
    const ref = rows.find(
      (r) =>
        r.target === options.ref &&
        (options.sameKey === undefined || r[options.sameKey] === row[options.sameKey]),
    );
    const mine = row[options.key];
    const theirs = ref?.[options.key];
    if (typeof mine !== 'number' || typeof theirs !== 'number' || mine <= 0 || theirs <= 0) {
      row[options.as] = null;
    } else {
      row[options.as] = options.invert ? theirs / mine : mine / theirs;
    }
  }
}

/** One row per group of rows sharing `keys`: the median of every numeric column. */
export function medianRows(rows: Row[], keys: readonly string[]): Row[] {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const id = keys.map((k) => String(row[k])).join('|');
    const group = groups.get(id);
    if (group === undefined) groups.set(id, [row]);
    else group.push(row);
  }
  return [...groups.values()].map((group) => {
    const first = group[0] ?? {};
    const merged: Row = { ...first };
    for (const [column, value] of Object.entries(first)) {
      if (typeof value !== 'number') continue;
      const values = group.map((r) => r[column]).filter((v): v is number => typeof v === 'number');
      values.sort((a, b) => a - b);
      const mid = Math.floor(values.length / 2);
      merged[column] =
        values.length % 2 === 1 ? (values[mid] ?? null) : ((values[mid - 1] ?? 0) + (values[mid] ?? 0)) / 2;
    }
    return merged;
  });
}
