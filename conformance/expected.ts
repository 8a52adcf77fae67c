/**
 * expected-failures.json: every suite test and own case we knowingly fail, in groups that share
 * one reason. A run fails on a failure not listed here and on a listed test that passes.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface ExpectedGroup {
  /** Short name of the group, e.g. 'heuristic freshness off'. */
  group: string;
  /** Why these fail, in terms of the RFC. */
  reason: string;
  /** The clause involved. */
  rfc: string;
  /** fix: a bug with a plan; deliberate: a choice we stand by; suite: we read the RFC differently. */
  plan: 'fix' | 'deliberate' | 'suite';
  /** Timing-dependent: either result is accepted (kept to a minimum, each one explained). */
  flaky?: boolean;
  tests: string[];
}

export interface ExpectedFailures {
  suite: string;
  groups: ExpectedGroup[];
  cases: ExpectedGroup[];
}

export interface Listed {
  group: ExpectedGroup;
}

function validateGroups(groups: unknown, where: string, problems: string[]): ExpectedGroup[] {
  if (!Array.isArray(groups)) {
    problems.push(`${where}: expected an array`);
    return [];
  }
  return groups.filter((group: Partial<ExpectedGroup>, index) => {
    const at = `${where}[${index}]`;
    const before = problems.length;
    if (typeof group.group !== 'string' || !group.group) problems.push(`${at}.group: missing`);
    if (typeof group.reason !== 'string' || group.reason.length < 20)
      problems.push(`${at}.reason: missing or too short`);
    if (typeof group.rfc !== 'string' || !group.rfc) problems.push(`${at}.rfc: missing`);
    if (!['fix', 'deliberate', 'suite'].includes(String(group.plan)))
      problems.push(`${at}.plan: fix, deliberate or suite`);
    if (!Array.isArray(group.tests) || group.tests.length === 0) problems.push(`${at}.tests: empty`);
    return problems.length === before;
  }) as ExpectedGroup[];
}

/** Reads and validates the file; ids are checked against the known ones. */
export function loadExpected(
  file: string,
  knownSuiteIds: ReadonlySet<string>,
  knownCaseIds: ReadonlySet<string>,
): { suite: Map<string, Listed>; cases: Map<string, Listed>; problems: string[] } {
  const problems: string[] = [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ExpectedFailures>;
  const index = (groups: ExpectedGroup[], known: ReadonlySet<string>, where: string): Map<string, Listed> => {
    const listed = new Map<string, Listed>();
    for (const group of groups) {
      for (const id of group.tests) {
        if (listed.has(id)) problems.push(`${where}: ${id} is listed twice`);
        if (!known.has(id)) problems.push(`${where}: ${id} is not a known id`);
        listed.set(id, { group });
      }
    }
    return listed;
  };
  const suite = index(validateGroups(parsed.groups ?? [], 'groups', problems), knownSuiteIds, 'groups');
  const cases = index(validateGroups(parsed.cases ?? [], 'cases', problems), knownCaseIds, 'cases');
  return { suite, cases, problems };
}

export interface Comparison {
  newFailures: string[];
  unexpectedPasses: string[];
}

/** `failing` and `passing` are ids that ran; ids that did not run are not compared. */
export function compare(
  listed: Map<string, Listed>,
  failing: readonly string[],
  passing: readonly string[],
): Comparison {
  return {
    newFailures: failing.filter((id) => !listed.has(id)),
    unexpectedPasses: passing.filter((id) => {
      const entry = listed.get(id);
      return entry !== undefined && entry.group.flaky !== true;
    }),
  };
}

/**
 * Removes ids that now pass (outside flaky groups) from the file, and groups left empty. New
 * failures are not added: each needs its reason written by hand.
 */
export function pruneExpected(file: string, passing: ReadonlySet<string>): string[] {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ExpectedFailures;
  const removed: string[] = [];
  const prune = (groups: ExpectedGroup[]): ExpectedGroup[] =>
    groups
      .map((group) => {
        if (group.flaky) return group;
        const kept = group.tests.filter((id) => !passing.has(id));
        removed.push(...group.tests.filter((id) => passing.has(id)));
        return { ...group, tests: kept };
      })
      .filter((group) => group.tests.length > 0);
  const pruned: ExpectedFailures = { ...parsed, groups: prune(parsed.groups), cases: prune(parsed.cases) };
  if (removed.length > 0) writeFileSync(file, `${JSON.stringify(pruned, null, 2)}\n`);
  return removed;
}
