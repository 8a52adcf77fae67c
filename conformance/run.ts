/**
 * `npm run conformance`: the public HTTP cache test suite (http-cache-tests, installed as a dev
 * dependency) and our own cases, against `strata serve` on loopback ports with temp cache dirs.
 *
 *   --target strata|passthrough   what sits between client and origin (default strata;
 *                                 passthrough is a forwarding proxy that stores nothing)
 *   --only suite|cases            run one half
 *   --id ID                       one suite test (or one case), with its requests and responses
 *   --workers N                   workers of the Strata node under the suite (default: its own)
 *   --no-compare                  report only; do not judge against expected-failures.json
 *   --prune-expected              remove from expected-failures.json what now passes
 *
 * STRATA_CONFORMANCE_LOG=FILE appends every line the origin and the nodes print to FILE, with
 * the nodes' access log on (which request got which status, cache and insert outcome).
 *
 * Prints `passed=N failed=M total=T`, the failures by section, writes the full results to
 * conformance/results/ and exits 1 on a failure not in expected-failures.json or on a listed
 * failure that now passes.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type CaseResult, runCases } from './cases/run-cases.ts';
import { cases } from './cases/table.ts';
import { compare, loadExpected, pruneExpected } from './expected.ts';
import { PassthroughProxy } from './lib/passthrough-proxy.ts';
import { atExit, installCleanup, killAllNow, startChild } from './lib/processes.ts';
import { STRATA_CLI, StrataNode } from './lib/strata-node.ts';
import { isFailure, printCases, printSuite, tally, tallyBySection, writeResults } from './report.ts';
import { classify } from './suite/classify.ts';
import { runSuiteClient, suiteSections } from './suite/client.ts';
import type { TestOutcome } from './suite/types.ts';

const HERE = import.meta.dirname;
const SUITE_VERSION = 'http-cache-tests@0.4.5';
const WHOLE_RUN_LIMIT_MS = 300_000;
const SUITE_RUN_LIMIT_MS = 180_000;
const REQUEST_LIMIT_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'strata' },
    only: { type: 'string' },
    id: { type: 'string' },
    workers: { type: 'string' },
    'no-compare': { type: 'boolean', default: false },
    'prune-expected': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

interface Stoppable {
  url: string;
  stop(): Promise<void>;
  /** Present for a Strata node: false once it has exited. */
  alive?: boolean;
  output?: string[];
}

async function startOrigin(): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const child = startChild('suite-origin', process.execPath, [join(HERE, 'suite', 'origin-server.ts')]);
  const line = await child.waitForLine(/^\{"listening":\d+\}$/, 15_000);
  const port = (JSON.parse(line) as { listening: number }).listening;
  return { url: `http://127.0.0.1:${port}`, port, stop: () => child.stop() };
}

async function startTarget(originPort: number, workDir: string): Promise<Stoppable> {
  if (args.target === 'passthrough') {
    const proxy = new PassthroughProxy(originPort);
    await proxy.start();
    return proxy;
  }
  const workers = args.workers === undefined ? undefined : Number(args.workers);
  const node = new StrataNode({
    name: 'strata',
    originUrl: `http://127.0.0.1:${originPort}`,
    cacheDir: join(workDir, 'suite-cache'),
    workDir,
    ...(workers === undefined ? {} : { workers }),
  });
  await node.start();
  return node;
}

async function runSuite(workDir: string): Promise<{ tests: TestOutcome[]; ms: number; timedOut: boolean }> {
  const origin = await startOrigin();
  let target: Stoppable | undefined;
  try {
    target = await startTarget(origin.port, workDir);
    console.log(`${SUITE_VERSION} against ${args.target} at ${target.url} (origin ${origin.url})`);
    const sections = suiteSections();
    const run = await runSuiteClient(sections, {
      baseUrl: target.url,
      ...(args.id === undefined ? {} : { onlyId: args.id }),
      requestTimeoutMs: REQUEST_LIMIT_MS,
      runTimeoutMs: SUITE_RUN_LIMIT_MS,
    });
    if (run.timedOut)
      console.log(
        `the suite did not finish within ${SUITE_RUN_LIMIT_MS} ms; unfinished tests count as failed`,
      );
    if (target.alive === false) {
      const tail = target.output?.slice(-30).join('\n') ?? '';
      console.log(`\nthe node under test exited during the run; its last lines:\n${tail}`);
    }
    let tests = classify(sections, run.results, args.id === undefined);
    if (args.id !== undefined) tests = tests.filter((test) => test.id === args.id);
    return { tests, ms: run.ms, timedOut: run.timedOut };
  } finally {
    await target?.stop();
    await origin.stop();
  }
}

function judge(
  tests: TestOutcome[],
  caseResults: CaseResult[],
): { ok: boolean; expectedSuite: Set<string>; expectedCases: Set<string> } {
  const file = join(HERE, 'expected-failures.json');
  const knownSuite = new Set(suiteSections().flatMap((section) => section.tests.map((test) => test.id)));
  const knownCases = new Set(cases.map((entry) => entry.id));
  if (!existsSync(file)) {
    console.log('\nno expected-failures.json: nothing to compare with');
    return { ok: true, expectedSuite: new Set(), expectedCases: new Set() };
  }
  const expected = loadExpected(file, knownSuite, knownCases);
  const expectedSuite = new Set(expected.suite.keys());
  const expectedCases = new Set(expected.cases.keys());
  if (args['no-compare'] || args.target !== 'strata' || args.id !== undefined) {
    return { ok: true, expectedSuite, expectedCases };
  }
  const suite = compare(
    expected.suite,
    tests.filter(isFailure).map((test) => test.id),
    tests.filter((test) => test.countable && test.outcome === 'pass').map((test) => test.id),
  );
  const own = compare(
    expected.cases,
    caseResults.filter((result) => result.outcome === 'fail').map((result) => result.id),
    caseResults.filter((result) => result.outcome === 'pass').map((result) => result.id),
  );
  let unexpectedPasses = [...suite.unexpectedPasses, ...own.unexpectedPasses];
  if (args['prune-expected'] && unexpectedPasses.length > 0) {
    const removed = pruneExpected(file, new Set(unexpectedPasses));
    console.log(`\nremoved from expected-failures.json, now passing: ${removed.join(' ')}`);
    unexpectedPasses = [];
  }
  const problems = [
    ...expected.problems.map((problem) => `expected-failures.json: ${problem}`),
    ...[...suite.newFailures, ...own.newFailures].map(
      (id) => `new failure: ${id} (fix it, or list it in expected-failures.json with its reason)`,
    ),
    ...unexpectedPasses.map(
      (id) => `unexpected pass: ${id} (remove it from expected-failures.json, or --prune-expected)`,
    ),
  ];
  if (problems.length > 0) {
    console.log('\nCompared with expected-failures.json:');
    for (const problem of problems) console.log(`  ${problem}`);
  } else {
    console.log('\nCompared with expected-failures.json: as expected');
  }
  return { ok: problems.length === 0, expectedSuite, expectedCases };
}

async function main(): Promise<number> {
  installCleanup();
  const watchdog = setTimeout(() => {
    console.error(`conformance run exceeded ${WHOLE_RUN_LIMIT_MS} ms; stopping`);
    killAllNow();
    process.exit(1);
  }, WHOLE_RUN_LIMIT_MS);
  watchdog.unref();

  if (args.target !== 'strata' && args.target !== 'passthrough')
    throw new Error(`unknown --target ${args.target}`);
  if (args.target === 'strata' && !existsSync(STRATA_CLI)) {
    console.error(`${STRATA_CLI} does not exist: nothing to test (try --target passthrough)`);
    return 2;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'strata-conformance-'));
  if (!args.keep) atExit(() => rmSync(workDir, { recursive: true, force: true }));
  const started = Date.now();
  try {
    const runSuitePart =
      args.only !== 'cases' && !(args.id !== undefined && cases.some((c) => c.id === args.id));
    const runCasesPart =
      args.only !== 'suite' && args.target === 'strata' && (args.id === undefined || !runSuitePart);
    const suite = runSuitePart ? await runSuite(workDir) : { tests: [], ms: 0, timedOut: false };
    const caseResults = runCasesPart ? await runCases(cases, join(workDir, 'cases'), args.id) : [];

    const verdict = judge(suite.tests, caseResults);
    const total = tally(suite.tests);
    if (runSuitePart) printSuite(suite.tests, verdict.expectedSuite);
    printCases(caseResults, verdict.expectedCases);

    const casesPassed = caseResults.filter((result) => result.outcome === 'pass').length;
    const casesFailed = caseResults.filter((result) => result.outcome === 'fail').length;
    const casesPending = caseResults.filter((result) => result.outcome === 'pending').length;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = writeResults(
      join(HERE, 'results'),
      `${stamp}-${args.target}`,
      args.id === undefined && args.only === undefined,
      {
        suite: SUITE_VERSION,
        target: args.target,
        node: process.version,
        startedAt: new Date(started).toISOString(),
        ms: Date.now() - started,
        suiteTimedOut: suite.timedOut,
        summary: total,
        sections: tallyBySection(suite.tests),
        tests: suite.tests,
        cases: caseResults,
      },
    );

    console.log(`\nresults: ${file}`);
    if (runCasesPart)
      console.log(`cases: passed=${casesPassed} failed=${casesFailed} pending=${casesPending}`);
    if (runSuitePart) {
      console.log(
        `suite: required failures=${total.requiredFailed} optional failures=${total.optionalFailed} ` +
          `dependency=${total.dependencyFailed} harness=${total.harnessFailed} checks yes=${total.checksYes} no=${total.checksNo}`,
      );
      console.log(`passed=${total.passed} failed=${total.failed} total=${total.total}`);
    }
    console.log(
      `conformance ${verdict.ok ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return verdict.ok ? 0 : 1;
  } finally {
    if (!args.keep) rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    killAllNow();
    process.exit(code);
  },
  (error: unknown) => {
    console.error(error);
    killAllNow();
    process.exit(1);
  },
);
