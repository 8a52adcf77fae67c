/**
 * Reads the suite's raw results the way the suite itself does (lib/display.mjs,
 * determineTestResult), with one refinement: an error that is neither an assertion nor a setup
 * problem (a fetch error, a timeout) is reported as harness-fail rather than as a plain fail.
 */
import type { Outcome, RawResult, SuiteSection, SuiteTest, TestKind, TestOutcome } from './types.ts';

const PASSING: ReadonlySet<Outcome> = new Set(['pass', 'yes']);

function kindOf(test: SuiteTest): TestKind {
  return test.kind ?? 'required';
}

function own(test: SuiteTest, result: RawResult | undefined): Outcome {
  if (result === undefined) return 'untested';
  const kind = kindOf(test);
  if (result === true) return kind === 'check' ? 'yes' : 'pass';
  const [name, message] = result;
  if (name === 'Setup') return message === 'retry' ? 'retry' : 'setup-fail';
  if (name !== 'Assertion') return 'harness-fail';
  if (kind === 'required') return 'fail';
  if (kind === 'optimal') return 'optional-fail';
  return 'no';
}

/** `honorDependencies` false judges each test alone (for a run of a single test). */
export function classify(
  sections: readonly SuiteSection[],
  results: Record<string, RawResult>,
  honorDependencies = true,
): TestOutcome[] {
  const byId = new Map<string, SuiteTest>();
  for (const section of sections) for (const test of section.tests) byId.set(test.id, test);

  const memo = new Map<string, Outcome>();
  const outcomeOf = (test: SuiteTest, depth: number): Outcome => {
    const known = memo.get(test.id);
    if (known) return known;
    let outcome = own(test, results[test.id]);
    if (honorDependencies && outcome !== 'untested' && depth < 10) {
      for (const dependencyId of test.depends_on ?? []) {
        const dependency = byId.get(dependencyId);
        if (dependency && !PASSING.has(outcomeOf(dependency, depth + 1))) outcome = 'dependency-fail';
      }
    }
    memo.set(test.id, outcome);
    return outcome;
  };

  const outcomes: TestOutcome[] = [];
  for (const section of sections) {
    for (const test of section.tests) {
      if (test.browser_only === true) continue;
      const result = results[test.id];
      const kind = kindOf(test);
      outcomes.push({
        id: test.id,
        section: section.id,
        sectionName: section.name,
        name: test.name,
        kind,
        countable: kind !== 'check',
        outcome: outcomeOf(test, 0),
        detail: result === undefined ? 'no result' : result === true ? '' : result[1],
      });
    }
  }
  return outcomes;
}
