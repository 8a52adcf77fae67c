/** The shapes of the suite's test definitions and results that the runner relies on. */

export type TestKind = 'required' | 'optimal' | 'check';

export interface SuiteTest {
  id: string;
  name: string;
  kind?: TestKind;
  depends_on?: string[];
  browser_only?: boolean;
  browser_skip?: boolean;
  dump?: boolean;
  requests: unknown[];
}

export interface SuiteSection {
  id: string;
  name: string;
  description?: string;
  tests: SuiteTest[];
}

/** What the suite's client records per test: `true`, or `[errorName, message]`. */
export type RawResult = true | [string, string];

/**
 * How a result reads, following the suite's own display logic (lib/display.mjs):
 * pass, fail (required test), optional-fail (optimal test), yes/no (informational check),
 * setup-fail, retry, harness-fail, dependency-fail (a test it depends on did not pass),
 * untested (no result: the run was cut short).
 */
export type Outcome =
  | 'pass'
  | 'fail'
  | 'optional-fail'
  | 'yes'
  | 'no'
  | 'setup-fail'
  | 'retry'
  | 'harness-fail'
  | 'dependency-fail'
  | 'untested';

export interface TestOutcome {
  id: string;
  section: string;
  sectionName: string;
  name: string;
  kind: TestKind;
  /** Required and optimal tests count; checks only gather information. */
  countable: boolean;
  outcome: Outcome;
  detail: string;
}
