/** Summaries of a run: per suite section and overall, printed and written as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseResult } from './cases/run-cases.ts';
import type { Outcome, TestOutcome } from './suite/types.ts';

export interface Tally {
  /** Required and optimal tests that ran or should have. */
  total: number;
  passed: number;
  failed: number;
  /** Required tests judged and not passed (the suite's ⛔️, plus setup or harness trouble). */
  requiredFailed: number;
  /** Optimal tests judged and not passed (the suite's ⚠️, plus setup or harness trouble). */
  optionalFailed: number;
  /** Not judged because a test they depend on did not pass (the suite's ⚪️); counted as failed. */
  dependencyFailed: number;
  /** Of the failed: setup-fail, retry, harness-fail or untested. */
  harnessFailed: number;
  /** Informational checks: yes / no. */
  checksYes: number;
  checksNo: number;
}

export interface SectionTally extends Tally {
  id: string;
  name: string;
}

const HARNESS: ReadonlySet<Outcome> = new Set(['setup-fail', 'retry', 'harness-fail', 'untested']);

export function isFailure(test: TestOutcome): boolean {
  return test.countable && test.outcome !== 'pass';
}

export function tally(tests: readonly TestOutcome[]): Tally {
  const result: Tally = {
    total: 0,
    passed: 0,
    failed: 0,
    requiredFailed: 0,
    optionalFailed: 0,
    harnessFailed: 0,
    dependencyFailed: 0,
    checksYes: 0,
    checksNo: 0,
  };
  for (const test of tests) {
    if (!test.countable) {
      if (test.outcome === 'yes') result.checksYes++;
      else result.checksNo++;
      continue;
    }
    result.total++;
    if (test.outcome === 'pass') {
      result.passed++;
      continue;
    }
    result.failed++;
    if (test.outcome === 'dependency-fail') result.dependencyFailed++;
    else if (test.kind === 'required') result.requiredFailed++;
    else result.optionalFailed++;
    if (HARNESS.has(test.outcome)) result.harnessFailed++;
  }
  return result;
}

export function tallyBySection(tests: readonly TestOutcome[]): SectionTally[] {
  const sections = new Map<string, TestOutcome[]>();
  for (const test of tests) {
    const list = sections.get(test.section) ?? [];
    list.push(test);
    sections.set(test.section, list);
  }
  return [...sections.entries()].map(([id, list]) => ({
    id,
    name: list[0]?.sectionName ?? id,
    ...tally(list),
  }));
}

function pad(value: string | number, width: number): string {
  return String(value).padStart(width);
}

export function printSuite(tests: readonly TestOutcome[], expectedIds: ReadonlySet<string>): void {
  const sections = tallyBySection(tests);
  console.log(
    `\n${'section'.padEnd(54)} ${pad('pass', 5)} ${pad('fail', 5)} ${pad('req', 4)} ${pad('total', 6)}`,
  );
  for (const section of sections) {
    console.log(
      `${section.name.slice(0, 54).padEnd(54)} ${pad(section.passed, 5)} ${pad(section.failed, 5)} ${pad(section.requiredFailed, 4)} ${pad(section.total, 6)}`,
    );
  }
  const failures = tests.filter(isFailure);
  if (failures.length === 0) return;
  console.log('\nFailures by section (* = not in expected-failures.json):');
  let current = '';
  for (const test of failures) {
    if (test.sectionName !== current) {
      current = test.sectionName;
      console.log(`  ${current}`);
    }
    const mark = expectedIds.has(test.id) ? ' ' : '*';
    console.log(`   ${mark} ${test.id} [${test.kind}: ${test.outcome}] ${test.detail}`.trimEnd());
  }
}

export function printCases(results: readonly CaseResult[], expectedIds: ReadonlySet<string>): void {
  if (results.length === 0) return;
  console.log('\nOwn cases (conformance/cases):');
  for (const result of results) {
    const mark = result.outcome === 'fail' && !expectedIds.has(result.id) ? '*' : ' ';
    const detail = result.detail ? ` — ${result.detail.split('\n')[0]}` : '';
    console.log(`   ${mark} ${result.outcome.padEnd(7)} ${result.id} (${result.rfc})${detail}`);
  }
}

/** Writes `<name>.json`; a complete run also becomes latest.json. */
export function writeResults(dir: string, name: string, complete: boolean, data: unknown): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const text = `${JSON.stringify(data, null, 2)}\n`;
  writeFileSync(file, text);
  if (complete) writeFileSync(join(dir, 'latest.json'), text);
  return file;
}
