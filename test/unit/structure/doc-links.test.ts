/**
 * No dead links in README.md and docs/*.md: every relative link resolves to a file of the
 * checkout, and every #anchor (in the same page or another) to a heading of that page, with
 * GitHub's anchor rules (lower-cased, punctuation dropped, spaces to dashes, -1/-2 for repeats).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../../..');

function pages(): string[] {
  const docs = join(ROOT, 'docs');
  return [
    join(ROOT, 'README.md'),
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(docs, f)),
  ];
}

/** The text outside fenced code blocks and inline code. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const match of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = match[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) found.add(match[1]!);
  return found;
}

function links(text: string): string[] {
  const found: string[] = [];
  for (const match of prose(text).matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push(match[1]!);
  for (const match of prose(text).matchAll(/^\[[^\]]+\]:\s+(\S+)/gm)) found.push(match[1]!);
  return found;
}

describe('documentation links', () => {
  it('every relative link and anchor in README.md and docs/ resolves', () => {
    const dead: string[] = [];
    for (const page of pages()) {
      const text = readFileSync(page, 'utf8');
      for (const link of links(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
        const [path = '', anchor] = link.split('#');
        const target = path === '' ? page : resolve(dirname(page), decodeURI(path));
        const where = `${relative(ROOT, page)}: ${link}`;
        if (!existsSync(target)) {
          dead.push(`${where} (no such file)`);
          continue;
        }
        if (anchor === undefined || statSync(target).isDirectory()) continue;
        if (!target.endsWith('.md')) continue;
        if (!anchors(readFileSync(target, 'utf8')).has(anchor)) dead.push(`${where} (no such heading)`);
      }
    }
    assert.deepEqual(dead, []);
  });
});
